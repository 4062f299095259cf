#!/usr/bin/env node
// `node codegen-cli.mjs --functions DIR [--python-api FILE] [--typecheck MODE]`:
// writes `DIR/_generated/` and the typed Python module once, then type checks
// (`try` by default), as `npx convex codegen`, and prints one line per file
// written. Exits 1 with the build or type error.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { buildFunctions } from "./build.mjs";
import { generateTypeScript, writePythonModule } from "./codegen.mjs";
import { typeCheck } from "./typecheck.mjs";

const { values: options } = parseArgs({
  options: {
    functions: { type: "string" },
    "python-api": { type: "string" },
    typecheck: { type: "string", default: "try" },
  },
});
if (!options.functions) {
  process.stderr.write("error: --functions DIR is required\n");
  process.exit(2);
}
const functionsDir = path.resolve(options.functions);
const buildRoot = fs.mkdtempSync(path.join(os.tmpdir(), "flask-convex-codegen-"));
try {
  for (const name of await generateTypeScript(functionsDir, buildRoot)) {
    process.stdout.write(`Wrote ${path.join(functionsDir, "_generated", name)}\n`);
  }
  if (options["python-api"]) {
    const file = path.resolve(options["python-api"]);
    if (writePythonModule(file, await buildFunctions(functionsDir, buildRoot, 1))) process.stdout.write(`Wrote ${file}\n`);
  }
  await typeCheck(functionsDir, options.typecheck, path.join(buildRoot, "typecheck"));
} catch (error) {
  process.stderr.write(`error: ${error.message ?? error}\n`);
  process.exitCode = 1;
} finally {
  fs.rmSync(buildRoot, { recursive: true, force: true });
}
