// Durability of committed data. The data file is JSON lines: the first line is
// a full snapshot, every later line the writes of one commit. A commit is
// appended and fsync'ed before its mutation answers, so a `kill -9` loses
// nothing acknowledged; a torn last line (killed mid-append) was never
// acknowledged and is dropped on load. The file is rewritten (temp file,
// fsync, atomic rename) on start, on reset and when the log outgrows the
// snapshot, so its size stays proportional to the data.

import fs from "node:fs";
import path from "node:path";
import { convexToJson, jsonToConvex } from "convex/values";

const FORMAT = "flask-convex-local/1";
const MIN_LOG_LINES_BEFORE_COMPACTION = 1000;

/** The persistent state: documents by id plus the counters that must survive restarts. */
function emptyState() {
  return { ts: 0n, nextDocId: 10000, lastCreationTime: 0, documents: {} };
}

/** An append-only data file; `null` path keeps everything in memory. */
export class DataFile {
  constructor(filePath) {
    this.filePath = filePath;
    this.fd = null;
    this.logLines = 0;
    this.logBytes = 0;
    this.snapshotBytes = 0;
  }

  /** Reads the file (snapshot plus replayed commits); a missing file is an empty state. */
  load() {
    const state = emptyState();
    if (this.filePath === null || !fs.existsSync(this.filePath)) return state;
    const lines = fs.readFileSync(this.filePath, "utf8").split("\n");
    lines.forEach((line, index) => {
      if (line.trim() === "") return;
      let record;
      try {
        record = JSON.parse(line);
      } catch (error) {
        if (index >= lines.length - 2) return; // torn tail of an unacknowledged commit
        throw new Error(`${this.filePath}:${index + 1}: corrupt data file: ${error.message}`);
      }
      if (index === 0) {
        if (record.format !== FORMAT) {
          throw new Error(`${this.filePath}: not a flask-convex local data file`);
        }
        Object.assign(state.documents, decodeDocuments(record.documents));
      } else {
        for (const [id, doc] of Object.entries(decodeDocuments(record.writes))) {
          if (doc === null) delete state.documents[id];
          else state.documents[id] = doc;
        }
      }
      state.ts = BigInt(record.ts);
      state.nextDocId = record.nextDocId;
      state.lastCreationTime = record.lastCreationTime;
    });
    return state;
  }

  /** Replaces the file with one snapshot of `state`, atomically and durably. */
  rewrite(state) {
    if (this.filePath === null) return;
    this.close();
    const text = `${JSON.stringify({ format: FORMAT, ...counters(state), documents: encodeDocuments(state.documents) })}\n`;
    fs.mkdirSync(path.dirname(this.filePath), { recursive: true });
    const temp = `${this.filePath}.${process.pid}.tmp`;
    const fd = fs.openSync(temp, "w");
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, this.filePath);
    syncDirectory(path.dirname(this.filePath));
    this.fd = fs.openSync(this.filePath, "a");
    this.snapshotBytes = text.length;
    this.logLines = 0;
    this.logBytes = 0;
  }

  /** Durably records one commit: `writes` maps ids to new documents, null for deletes. */
  append(state, writes) {
    if (this.filePath === null) return;
    const line = `${JSON.stringify({ ...counters(state), writes: encodeDocuments(writes) })}\n`;
    fs.writeSync(this.fd, line);
    fs.fdatasyncSync(this.fd);
    this.logLines += 1;
    this.logBytes += line.length;
    if (this.logLines >= MIN_LOG_LINES_BEFORE_COMPACTION && this.logBytes > this.snapshotBytes) {
      this.rewrite(state);
    }
  }

  close() {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

function counters(state) {
  return {
    ts: state.ts.toString(),
    nextDocId: state.nextDocId,
    lastCreationTime: state.lastCreationTime,
  };
}

function encodeDocuments(documents) {
  const encoded = {};
  for (const [id, doc] of Object.entries(documents)) {
    encoded[id] = doc === null ? null : convexToJson(doc);
  }
  return encoded;
}

function decodeDocuments(encoded) {
  const documents = {};
  for (const [id, doc] of Object.entries(encoded)) {
    documents[id] = doc === null ? null : jsonToConvex(doc);
  }
  return documents;
}

function syncDirectory(directory) {
  const fd = fs.openSync(directory, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
