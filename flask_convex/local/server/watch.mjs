// Rebuilds on source changes, whatever the editor does to save: writes in
// place, renames over the file (sed -i, atomic saves), deletes and re-creates
// it, or changes many files at once (git checkout). chokidar watches the
// folder rather than each file's inode, so a replaced file stays watched.
// Events only say "look again": what reloads is decided by comparing the
// contents with those of the last build, so touching or re-saving a file
// unchanged rebuilds nothing.

import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import chokidar from "chokidar";
import { isIgnored, sourceFiles } from "./build.mjs";

/** A burst of events (a checkout, an editor's temp file and rename) settles this long. */
const SETTLE_MS = 100;

/** `rel path -> sha256` of every file a build of `directory` may read. */
export function sourceDigests(directory) {
  const digests = new Map();
  for (const rel of sourceFiles(directory)) {
    try {
      digests.set(rel, createHash("sha256").update(fs.readFileSync(path.join(directory, rel))).digest("hex"));
    } catch (error) {
      // Deleted between listing and reading: it is gone, which the next event reports.
      if (error.code !== "ENOENT") throw error;
    }
  }
  return digests;
}

/** The files added, removed or changed from `before` to `after`, sorted. */
export function changedFiles(before, after) {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((name) => before.get(name) !== after.get(name)).sort();
}

/**
 * Watches `directory` and calls `await rebuild(changed)` once events have
 * settled and the contents differ from those `built` describes (the digests
 * taken before the running build). One rebuild runs at a time; changes made
 * meanwhile trigger one more. Returns the chokidar watcher (`close()` stops it).
 */
export function watchSources(directory, built, rebuild) {
  let last = built;
  let timer = null;
  let running = false;
  let again = false;

  const check = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        const now = sourceDigests(directory);
        const changed = changedFiles(last, now);
        if (changed.length > 0) {
          last = now;
          await rebuild(changed);
        }
      } while (again);
    } finally {
      running = false;
    }
  };

  const watcher = chokidar.watch(directory, {
    ignoreInitial: true,
    ignored: (file) => {
      const rel = path.relative(directory, file);
      return rel !== "" && !rel.startsWith("..") && isIgnored(rel);
    },
  });
  const settle = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      check().catch((error) => process.stderr.write(`flask-convex: watching failed: ${error.stack}\n`));
    }, SETTLE_MS);
  };
  watcher.on("all", settle);
  // Saves made before the first scan finished raised no event: compare once then.
  watcher.on("ready", settle);
  watcher.on("error", (error) => process.stderr.write(`flask-convex: watching failed: ${error.stack ?? error}\n`));
  return watcher;
}
