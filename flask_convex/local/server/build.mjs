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

/** A bundling failure; the message is esbuild's report. */
export class BuildError extends Error {}

/**
 * Bundles and imports every module under `functionsDir` into a fresh
 * directory below `outRoot`. Returns `Map<module path, module namespace>`;
 * module paths are relative and extension-less ("dir/file", "schema").
 */
export async function buildFunctions(functionsDir, outRoot, buildId) {
  const entries = listModules(functionsDir);
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
    try {
      modules.set(modulePath, await import(pathToFileURL(file).href));
    } catch (error) {
      throw new BuildError(`Failed to load ${rel}: ${error.stack ?? error}`);
    }
  }
  return modules;
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
