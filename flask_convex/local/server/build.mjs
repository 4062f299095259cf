// Bundles an app's `convex/` directory with the esbuild that ships with the
// `convex` package, the way `npx convex deploy` does, so extension-less and
// `.ts` imports work under Node. `convex` itself stays external, pointing at
// this server's copy by absolute path: functions must share the one
// `convex/server` instance that convex-test drives, wherever the output lives.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

const esbuild = createRequire(createRequire(import.meta.url).resolve("convex/package.json"))("esbuild");

const SOURCE = /\.(ts|tsx|js|jsx|mts|mjs)$/;
const useServerConvex = {
  name: "server-convex",
  setup(build) {
    build.onResolve({ filter: /^convex(\/.*)?$/ }, ({ path: specifier }) => ({
      path: fileURLToPath(import.meta.resolve(specifier)),
      external: true,
    }));
  },
};

const SKIPPED = /(\.d\.ts|\.test\.[a-z]+|\.spec\.[a-z]+)$/;
const USE_NODE = /^\s*("|')use node("|');?\s*$/;
const COMMENT_OR_BLANK = /^\s*(\/\/.*|\/\*.*\*\/\s*)?$/;
// Modules the backend always runs in its own runtime, never in Node.
const MUST_BE_ISOLATE = new Set(["http", "crons", "schema", "auth.config"]);
const NOT_IN_DEFAULT_RUNTIME = "Are you trying to bundle for node?";
const USE_NODE_ADVICE = `It looks like you are using Node APIs from a file without the "use node" directive.
Split out actions using Node.js APIs like this into a new file only containing actions that uses "use node" so these actions will run in a Node.js environment.
For more information see https://docs.convex.dev/functions/runtimes#nodejs-runtime`;

/** A bundling failure; the message is esbuild's report. */
export class BuildError extends Error {}

/**
 * Bundles and imports every module under `functionsDir` into a fresh
 * directory below `outRoot`. Returns `Map<module path, module namespace>`;
 * module paths are relative and extension-less ("dir/file", "schema").
 */
export async function buildFunctions(functionsDir, outRoot, buildId) {
  const entries = listModules(functionsDir);
  const nodeEntries = new Set(entries.filter((rel) => usesNode(path.join(functionsDir, rel))));
  for (const rel of nodeEntries) {
    if (MUST_BE_ISOLATE.has(rel.replace(SOURCE, ""))) throw new BuildError(`"use node" directive is not allowed for ${rel}.`);
  }
  await refuseNodeApis(entries.filter((rel) => !nodeEntries.has(rel)).map((rel) => path.join(functionsDir, rel)));
  const outdir = path.join(outRoot, String(buildId));
  fs.rmSync(outdir, { recursive: true, force: true });
  try {
    await esbuild.build({
      entryPoints: entries.map((rel) => path.join(functionsDir, rel)),
      outbase: functionsDir,
      outdir,
      outExtension: { ".js": ".mjs" },
      bundle: true,
      splitting: true,
      format: "esm",
      platform: "node",
      target: "node20",
      sourcemap: "inline",
      plugins: [useServerConvex],
      logLevel: "silent",
    });
  } catch (error) {
    const messages = error.errors ?? [];
    const text = messages.length
      ? (await esbuild.formatMessages(messages, { kind: "error" })).join("")
      : String(error);
    throw new BuildError(text.trim());
  }
  const modules = new Map();
  for (const rel of entries) {
    const modulePath = rel.replace(SOURCE, "").split(path.sep).join("/");
    const file = path.join(outdir, rel.replace(SOURCE, ".mjs"));
    let module;
    try {
      module = await import(pathToFileURL(file).href);
    } catch (error) {
      throw new BuildError(`Failed to load ${rel}: ${error.stack ?? error}`);
    }
    if (nodeEntries.has(rel)) refuseNonActions(module, `${modulePath}.js`);
    modules.set(modulePath, module);
  }
  return modules;
}

/**
 * Bundles the default-runtime modules for a JavaScript runtime without Node's
 * built-ins, as `npx convex deploy` does, and fails like it when one imports
 * them. Other failures are left to the real build to report.
 */
async function refuseNodeApis(entryPoints) {
  if (entryPoints.length === 0) return;
  try {
    await esbuild.build({
      entryPoints,
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      plugins: [useServerConvex],
      logLevel: "silent",
    });
  } catch (error) {
    const nodeErrors = (error.errors ?? []).filter((e) => e.notes.some((n) => n.text.includes(NOT_IN_DEFAULT_RUNTIME)));
    if (nodeErrors.length === 0) return;
    const text = (await esbuild.formatMessages(nodeErrors, { kind: "error" })).join("");
    throw new BuildError(`${text.trim()}\n\n${USE_NODE_ADVICE}`);
  }
}

/** A "use node" module may define actions only, as the backend checks at deploy time. */
function refuseNonActions(module, modulePath) {
  for (const [name, value] of Object.entries(module)) {
    const type = value?.isQuery ? "Query" : value?.isMutation ? "Mutation" : null;
    if (type !== null) {
      throw new BuildError(
        `\`${name}\` defined in \`${modulePath}\` is a ${type} function. Only actions can be defined in Node.js. `
          + "See https://docs.convex.dev/functions/actions for more details.",
      );
    }
  }
}

/** Whether the file starts with the "use node" directive (after comments and blank lines). */
function usesNode(file) {
  const source = fs.readFileSync(file, "utf8");
  if (!source.includes("use node")) return false;
  for (const line of source.split("\n")) {
    if (USE_NODE.test(line)) return true;
    if (!COMMENT_OR_BLANK.test(line) && !/^\s*("|')use [a-z ]+("|');?\s*$/.test(line)) return false;
  }
  return false;
}

/** Deletes the output of builds other than `keepId`. */
export function removeOldBuilds(outRoot, keepId) {
  if (!fs.existsSync(outRoot)) return;
  for (const name of fs.readdirSync(outRoot)) {
    if (name !== String(keepId)) fs.rmSync(path.join(outRoot, name), { recursive: true, force: true });
  }
}

function listModules(functionsDir) {
  return sourceFiles(functionsDir).filter((rel) => SOURCE.test(rel) && !SKIPPED.test(rel));
}

/** Whether a path relative to the functions directory is outside what a build reads. */
export function isIgnored(rel) {
  const parts = rel.split(path.sep);
  return parts[0] === "_generated" || parts.some((part) => part.startsWith(".") || part === "node_modules");
}

/** Every file of `functionsDir` a build may read (relative paths, sorted). */
export function sourceFiles(functionsDir) {
  if (!fs.statSync(functionsDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new BuildError(`Functions directory not found: ${functionsDir}`);
  }
  const found = [];
  const walk = (rel) => {
    let entries;
    try {
      entries = fs.readdirSync(path.join(functionsDir, rel), { withFileTypes: true });
    } catch (error) {
      // A folder removed while we list (a checkout under way): the watcher looks again.
      if (error.code === "ENOENT" && rel !== "") return;
      throw error;
    }
    for (const entry of entries) {
      const child = path.join(rel, entry.name);
      if (isIgnored(child)) continue;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) found.push(child);
    }
  };
  walk("");
  return found.sort();
}
