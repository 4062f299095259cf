// Files written so that a crash, `kill -9` or power loss leaves either the old
// content or the new one, never a torn file: a temp file is written and
// fsync'ed, renamed over the target, and the directory fsync'ed.

import fs from "node:fs";
import path from "node:path";

/** Replaces `file` with `data` atomically and durably; a new file gets `mode` (before the umask). */
export function writeFileDurably(file, data, mode = 0o666) {
  const temp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(temp, "w", mode);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
  const directory = fs.openSync(path.dirname(file), "r");
  try {
    fs.fsyncSync(directory);
  } finally {
    fs.closeSync(directory);
  }
}
