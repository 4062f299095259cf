// Snapshot imports and exports as the convex CLI drives them.
//
// `npx convex import` uploads its file in parts (`start_upload`,
// `upload_part`, `finish_upload`), reads the import's state from
// `_system/cli/queryImport`, shows the change summary and confirms with
// `perform_import`; `npx convex export` asks for a snapshot
// (`export/request/zip`), reads `_system/cli/exports:getLatest` and downloads
// `export/zip/<ts>`. The backend parses and imports in a background worker;
// here each step is done by the time its request answers, so every state the
// CLI reads is a settled one. Records live in memory, as few as the CLI needs.

import { randomBytes } from "node:crypto";
import { RequestError } from "./errors.mjs";
import { ExportError, snapshotZip } from "./snapshotExport.mjs";
import { FORMATS, ImportError, MODES, applyImport, checkTableName, parseImport, summarize } from "./snapshotImport.mjs";

/** Uploads being sent at once; starting one more forgets the oldest. */
const MAX_PENDING_UPLOADS = 4;
/** Imports listed by `_system/cli/queryImport:list`. */
const MAX_IMPORT_RECORDS = 20;
const MAX_PART_NUMBER = 9999;
/** How long the backend keeps an export for download. */
const EXPORT_RETENTION_NS = 14n * 24n * 3600n * 1_000_000_000n;

export class Transfers {
  /** `runtime` holds the data; `maxImportBytes` bounds an upload and a ZIP's contents. */
  constructor(runtime, { maxImportBytes }) {
    this.runtime = runtime;
    this.maxImportBytes = maxImportBytes;
    this.uploads = new Map(); // token -> {parts: Map(partToken -> bytes), size}
    this.importList = new Map(); // id -> {record, parsed}
    this.importCount = 0;
    this.latest = null; // {record, bytes}
  }

  /** Begins an upload; returns its token. */
  startUpload() {
    const token = randomBytes(16).toString("hex");
    this.uploads.set(token, { parts: new Map(), size: 0 });
    if (this.uploads.size > MAX_PENDING_UPLOADS) this.uploads.delete(this.uploads.keys().next().value);
    return token;
  }

  /** Stores part `partNumber` of upload `token`; returns the part's token. */
  uploadPart(token, partNumber, bytes) {
    const upload = this.#upload(token);
    const number = Number(partNumber);
    if (!Number.isInteger(number) || number < 1 || number > MAX_PART_NUMBER) {
      throw new RequestError(400, "InvalidPartNumber", `partNumber must be an integer from 1 to ${MAX_PART_NUMBER}`);
    }
    const partToken = `${number}`;
    upload.size += bytes.length - (upload.parts.get(partToken)?.length ?? 0);
    if (upload.size > this.maxImportBytes) {
      this.uploads.delete(token);
      throw new RequestError(413, "ImportTooLarge", `The import is larger than the ${this.maxImportBytes} byte limit (--max-import-bytes)`);
    }
    upload.parts.set(partToken, bytes);
    return partToken;
  }

  /**
   * Ends upload `uploadToken` and parses it as `args` (`{format, tableName,
   * mode}`); returns the import's id. Its state is then
   * `waiting_for_confirmation` with the change summary, or `failed`.
   */
  finishUpload(args, uploadToken, partTokens) {
    const { format, tableName, mode = "requireEmpty", componentPath } = args ?? {};
    if (!FORMATS.has(format)) throw new RequestError(400, "BadFormat", `Unknown import format ${JSON.stringify(format)}`);
    if (!MODES.has(mode)) throw new RequestError(400, "BadMode", `Unknown import mode ${JSON.stringify(mode)}`);
    if (componentPath) throw new RequestError(400, "BadComponentPath", "Only the root component exists locally");
    if (format === "zip" && tableName !== undefined && tableName !== null) {
      throw new RequestError(400, "InvalidName", "ZIP import cannot have table name");
    }
    if (format !== "zip") {
      if (tableName === undefined || tableName === null) {
        throw new RequestError(400, "InvalidName", `${FORMAT_LABELS[format]} import requires table name`);
      }
      try {
        checkTableName(tableName);
      } catch (error) {
        throw new RequestError(400, "ImportInvalidName", error.message);
      }
    }
    const upload = this.#upload(uploadToken);
    if (!Array.isArray(partTokens) || partTokens.some((part) => !upload.parts.has(part))) {
      throw new RequestError(400, "InvalidPartTokens", "partTokens must list the tokens upload_part returned");
    }
    if (new Set(partTokens).size !== partTokens.length) {
      throw new RequestError(400, "InvalidPartTokens", "partTokens must list each part once");
    }
    this.uploads.delete(uploadToken);
    const bytes = Buffer.concat(partTokens.map((part) => upload.parts.get(part)));
    const id = `${++this.importCount}_snapshot_imports`;
    const record = {
      _id: id,
      _creationTime: Date.now(),
      format: format === "zip" ? { format: "zip" } : { format: WIRE_FORMATS[format], table: tableName },
      mode: mode[0].toUpperCase() + mode.slice(1),
      state: { state: "uploaded" },
    };
    const entry = { record, parsed: null, mode };
    // Only the newest upload's parsed data waits for confirmation: it replaces any older one.
    for (const waiting of this.importList.values()) {
      if (waiting.record.state.state !== "waiting_for_confirmation") continue;
      waiting.parsed = null;
      waiting.record.state = { state: "failed", error_message: `Replaced by import ${id} before it was confirmed: run this import again` };
    }
    this.importList.set(id, entry);
    if (this.importList.size > MAX_IMPORT_RECORDS) this.importList.delete(this.importList.keys().next().value);
    this.#settle(entry, () => {
      const schema = this.runtime.modules.get("schema")?.default;
      entry.parsed = parseImport(bytes, { format, table: tableName, maxBytes: this.maxImportBytes, schema });
      const { message, requireManualConfirmation } = summarize(entry.parsed, this.runtime.current, mode);
      return { state: "waiting_for_confirmation", message_to_confirm: message, require_manual_confirmation: requireManualConfirmation };
    });
    return id;
  }

  /** Runs import `importId`, confirmed; its state ends `completed` or `failed`. */
  async performImport(importId) {
    const entry = this.#import(importId);
    if (entry.record.state.state !== "waiting_for_confirmation") {
      throw new RequestError(400, "ImportNotWaiting", `Import ${importId} is ${entry.record.state.state}, not waiting for confirmation`);
    }
    entry.record.state = { state: "in_progress", progress_message: "Importing", checkpoint_messages: [] };
    let written;
    try {
      written = await applyImport(this.runtime, entry.parsed, entry.mode);
    } catch (error) {
      this.#settle(entry, () => {
        throw error;
      });
      return;
    } finally {
      entry.parsed = null;
    }
    entry.record.state = { state: "completed", timestamp: this.runtime.latestTs, num_rows_written: BigInt(written) };
  }

  /** Cancels import `importId` if it has not started, with the backend's refusals otherwise. */
  cancelImport(importId) {
    const entry = this.#import(importId);
    const { state } = entry.record.state;
    if (state === "in_progress") throw new RequestError(400, "CannotCancelImport", "Cannot cancel an import in progress");
    if (state === "completed" || state === "failed") {
      throw new RequestError(400, "CannotCancelImport", `Cannot cancel an import that has ${state}`);
    }
    entry.parsed = null;
    entry.record.state = { state: "failed", error_message: "Import canceled" };
  }

  /** The record of import `importId` (`_system/cli/queryImport`), or null. */
  importRecord(importId) {
    return this.importList.get(importId)?.record ?? null;
  }

  /** Every remembered import's record, oldest first. */
  importRecords() {
    return [...this.importList.values()].map(({ record }) => record);
  }

  /** Takes a snapshot export of the data now, with the stored files if `includeStorage`. */
  requestExport(includeStorage) {
    const { ts, documents } = this.runtime.snapshot();
    const tables = this.runtime.db._schema?.tables.keys() ?? [];
    const record = {
      _id: `${ts}_exports`,
      _creationTime: Date.now(),
      format: { format: "zip", include_storage: includeStorage },
      requestor: "snapshotExport",
      start_ts: ts,
    };
    try {
      const bytes = snapshotZip(documents, tables, { blobs: this.runtime.blobs, includeStorage });
      this.latest = { record: { ...record, state: "completed", complete_ts: this.runtime.latestTs, expiration_ts: ts + EXPORT_RETENTION_NS }, bytes };
    } catch (error) {
      if (!(error instanceof ExportError)) throw error;
      this.latest = { record: { ...record, state: "failed", failure_reason: error.message }, bytes: null };
    }
  }

  /** The latest export's record (`_system/cli/exports:getLatest`), or null. */
  latestExport() {
    return this.latest?.record ?? null;
  }

  /** The ZIP of the completed export taken at `ts` (a decimal string), or null. */
  exportBytes(ts) {
    const latest = this.latest;
    if (latest?.bytes == null || String(latest.record.start_ts) !== ts) return null;
    return latest.bytes;
  }

  /** Runs `settled()` for entry's next state; a refusal fails the import with the backend's wording. */
  #settle(entry, settled) {
    try {
      entry.record.state = settled();
    } catch (error) {
      entry.parsed = null;
      if (!(error instanceof ImportError)) {
        process.stderr.write(`flask-convex: import ${entry.record._id} failed: ${error.stack ?? error}\n`);
      }
      entry.record.state = { state: "failed", error_message: `Hit an error while importing:\n${error.message ?? error}` };
    }
  }

  #upload(token) {
    const upload = this.uploads.get(token);
    if (upload === undefined) throw new RequestError(400, "InvalidUploadToken", "Unknown or expired uploadToken: start the upload again");
    return upload;
  }

  #import(importId) {
    const entry = this.importList.get(importId);
    if (entry === undefined) throw new RequestError(400, "InvalidImport", `invalid import id ${importId}`);
    return entry;
  }
}

/** How the backend names each format in an import's record. */
const WIRE_FORMATS = { csv: "csv", jsonLines: "jsonl", jsonArray: "json_array" };
const FORMAT_LABELS = { csv: "CSV", jsonLines: "JSONL", jsonArray: "JSON" };
