// Type checks an app's `convex/` with `tsc --noEmit` after codegen, as
// `npx convex dev --typecheck=enable|try|disable` does: `try` skips an app
// without `convex/tsconfig.json`, `enable` refuses one, and a failed check
// fails the build, so the last good build keeps serving. The check runs on
// this server's own `typescript`, `convex` and `@types/node`: `convex` is the
// copy the functions run with (build.mjs), and an app of a Flask project has
// no `node_modules` of its own. The app's tsconfig.json is otherwise kept.

import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BuildError } from "./build.mjs";

/** `--typecheck` modes, as the convex CLI names them. */
export const TYPECHECK_MODES = ["enable", "try", "disable"];

const NODE_MODULES = fileURLToPath(new URL("./node_modules/", import.meta.url));
const TSC = path.join(NODE_MODULES, "typescript", "bin", "tsc");
// tsc's "No inputs were found": nothing to check, which the CLI counts as a pass.
const NO_INPUTS = "error TS18003";

/**
 * Resolves when `functionsDir` type checks under `mode`; rejects with a
 * BuildError holding tsc's report. `scratchDir` gets the tsconfig that points
 * `convex` and the type roots at this server's packages.
 */
export async function typeCheck(functionsDir, mode, scratchDir) {
  if (!TYPECHECK_MODES.includes(mode)) throw new Error(`Unknown typecheck mode ${JSON.stringify(mode)}`);
  if (mode === "disable") return;
  const tsconfig = path.join(functionsDir, "tsconfig.json");
  if (!fs.existsSync(tsconfig)) {
    if (mode === "try") return;
    throw new BuildError(
      `Found no ${path.basename(functionsDir)}/tsconfig.json to type check the functions with: `
        + "add one (`npx convex codegen --init` writes the default) or use --typecheck=try.",
    );
  }
  const cwd = path.dirname(functionsDir);
  const shown = await tsc(["--showConfig", "--project", functionsDir], cwd);
  if (shown.output.startsWith(NO_INPUTS)) return;
  if (shown.code !== 0) throw new BuildError(shown.output.trim());
  const own = JSON.parse(shown.output);
  const config = path.join(scratchDir, "tsconfig.typecheck.json");
  fs.mkdirSync(scratchDir, { recursive: true });
  fs.writeFileSync(config, JSON.stringify(checkingConfig(functionsDir, tsconfig, own)));
  const checked = await tsc(["--project", config, "--noEmit", "--pretty", "false"], cwd);
  if (checked.code === 0 || checked.output.startsWith(NO_INPUTS)) return;
  throw new BuildError(
    `TypeScript typecheck via \`tsc\` failed.\n${checked.output.trim()}\n`
      + "To ignore failing typecheck, use `--typecheck=disable`.",
  );
}

/** The app's tsconfig with `convex` and the type roots added; its own `paths`/`typeRoots` stay first. */
function checkingConfig(functionsDir, tsconfig, own) {
  const absolute = (file) => path.resolve(functionsDir, file);
  const paths = Object.fromEntries(
    Object.entries(own.compilerOptions?.paths ?? {}).map(([key, targets]) => [key, targets.map(absolute)]),
  );
  const typeRoots = own.compilerOptions?.typeRoots?.map(absolute) ?? ancestorTypeRoots(functionsDir);
  return {
    extends: tsconfig,
    compilerOptions: {
      paths: { convex: [path.join(NODE_MODULES, "convex")], "convex/*": [path.join(NODE_MODULES, "convex", "*")], ...paths },
      typeRoots: [...typeRoots, path.join(NODE_MODULES, "@types")],
    },
    // Without an `include` of the app's, tsc would look for files beside our
    // config: name those it found beside the app's instead.
    ...(own.include === undefined ? { files: (own.files ?? []).map(absolute) } : {}),
  };
}

/** The `node_modules/@types` folders tsc would look in by default: those above `directory`. */
function ancestorTypeRoots(directory) {
  const roots = [];
  for (let dir = directory; ; dir = path.dirname(dir)) {
    const root = path.join(dir, "node_modules", "@types");
    if (fs.existsSync(root)) roots.push(root);
    if (path.dirname(dir) === dir) return roots;
  }
}

/** Runs tsc; resolves to its exit code and stdout (where it reports). */
function tsc(args, cwd) {
  return new Promise((resolve, reject) => {
    // A clean environment: the server's own is the functions' (NODE_OPTIONS and all).
    execFile(process.execPath, [TSC, ...args], { cwd, env: {}, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") reject(error);
      else resolve({ code: error ? error.code : 0, output: stdout || stderr });
    });
  });
}
