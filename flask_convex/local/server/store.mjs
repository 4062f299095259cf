// Durability of committed data. The data file is JSON lines: the first line is
// a full snapshot, every later line the writes of one commit. A commit is
// appended and fsync'ed before its mutation answers, so a `kill -9` loses
// nothing acknowledged; a torn last line (killed mid-append) was never
// acknowledged and is dropped on load. The file is rewritten (temp file,
// fsync, atomic rename) on start, on reset and when the log outgrows the
// snapshot, so its size stays proportional to the data.
//
// A commit line may name the WebSocket request (session, request id) that made
// it, and a later line records that request's response: a client re-sending
// after a restart gets the answer instead of a second run. A lock file beside
// the data file holds the pid of the one process that owns it.

import fs from "node:fs";
import path from "node:path";
import { convexToJson, jsonToConvex } from "convex/values";
import { writeFileDurably } from "./durable.mjs";

const FORMAT = "flask-convex-local/1";
const MIN_LOG_LINES_BEFORE_COMPACTION = 1000;
/** How many WebSocket mutation responses are remembered for re-sent requests. */
const REMEMBERED_RESPONSES = 10_000;

/** Another live process owns the data file. */
export class DataFileInUseError extends Error {}

/** The persistent state: documents by id plus the counters that must survive restarts. */
function emptyState() {
  // `responses`: request key -> the response sent, or null when the commit
  // landed but its response did not (killed in between).
  // `env`: variables set with `npx convex env set` (or `flask convex env set`).
  return { ts: 0n, nextDocId: 10000, lastCreationTime: 0, documents: {}, responses: new Map(), env: {} };
}

/** An append-only data file; `null` path keeps everything in memory. */
export class DataFile {
  constructor(filePath) {
    this.filePath = filePath;
    this.fd = null;
    this.logLines = 0;
    this.logBytes = 0;
    this.snapshotBytes = 0;
    this.lockPath = null;
  }

  /**
   * Claims the file for this process, or throws naming the live process that
   * holds it: two deployments appending to one file would lose commits. A lock
   * left by a killed process is taken over.
   */
  lock() {
    if (this.filePath === null) return;
    const lockPath = `${this.filePath}.lock`;
    fs.mkdirSync(path.dirname(lockPath), { recursive: true });
    // Written whole to a temp file, then linked: a reader never sees a half-written pid.
    const temp = `${lockPath}.${process.pid}.tmp`;
    fs.writeFileSync(temp, `${process.pid}\n`);
    try {
      for (;;) {
        try {
          fs.linkSync(temp, lockPath);
          this.lockPath = lockPath;
          return;
        } catch (error) {
          if (error.code !== "EEXIST") throw error;
        }
        const holder = Number.parseInt(readOrEmpty(lockPath), 10);
        if (isAlive(holder)) {
          throw new DataFileInUseError(
            `${this.filePath} is in use by another local deployment (pid ${holder}); stop it or use another data file`,
          );
        }
        fs.rmSync(lockPath, { force: true });
      }
    } finally {
      fs.rmSync(temp, { force: true });
    }
  }

  /** Releases the lock taken by `lock()`. */
  unlock() {
    if (this.lockPath !== null) fs.rmSync(this.lockPath, { force: true });
    this.lockPath = null;
  }

  /** Reads the file (snapshot plus replayed commits); a missing file is an empty state. */
  load() {
    const state = emptyState();
    if (this.filePath === null || !fs.existsSync(this.filePath)) return state;
    const lines = fs.readFileSync(this.filePath, "utf8").split("\n");
    for (const [index, line] of lines.entries()) {
      if (line.trim() === "") continue;
      let record;
      try {
        record = JSON.parse(line);
      } catch (error) {
        if (index >= lines.length - 2) continue; // torn tail of an unacknowledged commit
        throw new Error(`${this.filePath}:${index + 1}: corrupt data file: ${error.message}`);
      }
      if (index === 0) {
        if (record.format !== FORMAT) {
          throw new Error(`${this.filePath}: not a flask-convex local data file`);
        }
        Object.assign(state.documents, decodeDocuments(record.documents));
        for (const [key, response] of record.responses ?? []) state.responses.set(key, response);
        state.env = record.env ?? {};
      } else if (record.response !== undefined) {
        const [key, response] = record.response;
        state.responses.set(key, response);
        continue;
      } else {
        for (const [id, doc] of Object.entries(decodeDocuments(record.writes))) {
          if (doc === null) delete state.documents[id];
          else state.documents[id] = doc;
        }
        if (record.request !== undefined) rememberResponse(state.responses, record.request, null);
      }
      state.ts = BigInt(record.ts);
      state.nextDocId = record.nextDocId;
      state.lastCreationTime = record.lastCreationTime;
    }
    return state;
  }

  /** Replaces the file with one snapshot of `state`, atomically and durably. */
  rewrite(state) {
    if (this.filePath === null) return;
    this.close();
    const text = `${JSON.stringify({
      format: FORMAT,
      ...counters(state),
      documents: encodeDocuments(state.documents),
      responses: [...state.responses],
      env: state.env,
    })}\n`;
    fs.mkdirSync(path.dirname(this.filePath), { recursive: true });
    writeFileDurably(this.filePath, text);
    this.fd = fs.openSync(this.filePath, "a");
    this.snapshotBytes = text.length;
    this.logLines = 0;
    this.logBytes = 0;
  }

  /**
   * Durably records one commit: `writes` maps ids to new documents, null for
   * deletes; `request` is the key of the WebSocket request that made it, if any.
   */
  append(state, writes, request) {
    if (this.filePath === null) return;
    this.write(state, JSON.stringify({ ...counters(state), writes: encodeDocuments(writes), request }));
  }

  /** Records the response to the request of an earlier commit. */
  appendResponse(state, key, response) {
    if (this.filePath === null) return;
    // Not synced: losing it costs only the answer, and the next commit syncs it anyway.
    this.write(state, JSON.stringify({ ...counters(state), response: [key, response] }), false);
  }

  write(state, record, sync = true) {
    const line = `${record}\n`;
    fs.writeSync(this.fd, line);
    if (sync) fs.fdatasyncSync(this.fd);
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

/** Remembers `response` under `key`, forgetting the oldest beyond the limit. */
export function rememberResponse(responses, key, response) {
  responses.delete(key);
  responses.set(key, response);
  if (responses.size > REMEMBERED_RESPONSES) responses.delete(responses.keys().next().value);
}

function readOrEmpty(file) {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (error) {
    if (error.code === "ENOENT") return "";
    throw error;
  }
}

function isAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
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
