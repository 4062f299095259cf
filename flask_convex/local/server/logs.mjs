// What functions print reaches the developer's terminal, named after the
// function, as `npx convex dev` shows a deployment's logs:
//   [CONVEX Q(tasks:list)] [LOG] 'hello'
//   [CONVEX M(tasks:add)] Uncaught Error: boom
// Every kind of function (queries, mutations, actions, scheduled functions,
// HTTP actions) prints through `printFunctionLogs`.

const KIND_LETTERS = { query: "Q", mutation: "M", action: "A", httpAction: "H" };

/**
 * Writes the `[LEVEL] text` lines a function logged, then its failure if it
 * failed (`error`: the message without the request id), to stdout.
 * `kind` is "query", "mutation", "action" or "httpAction"; `identifier` names
 * the function ("tasks:list", or "GET /path" for an HTTP action).
 */
export function printFunctionLogs(kind, identifier, logLines, error = null) {
  if (logLines.length === 0 && error === null) return;
  const prefix = `[CONVEX ${KIND_LETTERS[kind] ?? "?"}(${identifier})]`;
  const out = logLines.map((line) => `${prefix} ${line}\n`);
  if (error !== null) out.push(`${prefix} ${error}\n`);
  process.stdout.write(out.join(""));
}
