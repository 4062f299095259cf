// The Convex runtime reaches the deployment through `global.Convex`'s syscalls;
// convex-test installs its own once. Features that must behave as on a real
// deployment (storage URLs, durable scheduling) replace single syscalls here.

/**
 * Routes the syscalls named in `asyncHandlers` / `jsHandlers` to them, the rest
 * to convex-test. An async handler takes the parsed arguments and returns the
 * result as a JSON-serialisable value; a JS handler takes the raw arguments and
 * returns the result itself, or `undefined` to fall through to convex-test.
 */
export function overrideSyscalls({ asyncHandlers, jsHandlers }) {
  const original = global.Convex;
  global.Convex = {
    get syscall() {
      return original.syscall;
    },
    asyncSyscall: async (op, argsJson) => {
      const handler = asyncHandlers[op];
      if (handler === undefined) return original.asyncSyscall(op, argsJson);
      return JSON.stringify((await handler(JSON.parse(argsJson))) ?? null);
    },
    jsSyscall: async (op, args) => {
      const handler = jsHandlers[op];
      return handler === undefined ? original.jsSyscall(op, args) : handler(args, () => original.jsSyscall(op, args));
    },
  };
}
