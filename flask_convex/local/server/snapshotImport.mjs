// Reading what `npx convex import` uploads, and applying it in one commit.
//
// Formats are the backend's: JSON lines, a JSON array and CSV for one table;
// a ZIP snapshot as `npx convex export` writes it (`<table>/documents.jsonl`,
// `<table>/generated_schema.jsonl`, `_tables/documents.jsonl`,
// `_storage/documents.jsonl` and `_storage/<id>` files). The whole file is
// parsed and checked before anything is written, and the writes land in one
// transaction: a bad row fails the import with nothing applied.
//
// Ids: a document keeps an `_id` of its own table in this deployment's format;
// any other `_id` (a cloud deployment's, or another table's) gets a new id,
// and every string equal to an old id in the import is rewritten to the new
// one, so references between the imported documents still hold.

import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { parse as parseCsv } from "csv-parse/sync";
import { jsonToConvex } from "convex/values";
import { unzipSync } from "fflate";
import { parse as parseLossless } from "lossless-json";
import { SchemaValidationError, checkSchema, tableOfId } from "./validation.mjs";

/** The import modes of `npx convex import`: the default, `--append`, `--replace`, `--replace-all`. */
export const MODES = new Set(["requireEmpty", "append", "replace", "replaceAll"]);
/** The formats of `npx convex import --format`. */
export const FORMATS = new Set(["csv", "jsonLines", "jsonArray", "zip"]);

/** An import the backend refuses; the message is the one it gives. */
export class ImportError extends Error {}

const STORAGE = "_storage";
const TABLES = "_tables";
/** The backend's limit on a JSON array import, its transaction write limit. */
const MAX_JSON_ARRAY_BYTES = 16 * 1024 * 1024;
const TABLE_NAME = /^[a-zA-Z][a-zA-Z0-9_]*$/;
const MAX_TABLE_NAME = 64;
const DOCUMENTS_FILE = /^(.*\/)?([^/]+)\/documents\.jsonl$/;
const SCHEMA_FILE = /^(.*\/)?([^/]+)\/generated_schema\.jsonl$/;
const STORAGE_FILE = /^(.*\/)?_storage\/([^/.]+)(?:\.[^/]+)?$/;
const IN_COMPONENT = /(^|\/)_components\/[^/]+\/$/;
const CSV_FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$|^[+-]?(inf|infinity|nan)$/i;

/** Throws ImportError unless `name` may name a user table. */
export function checkTableName(name) {
  if (typeof name !== "string" || !TABLE_NAME.test(name) || name.length > MAX_TABLE_NAME) {
    throw new ImportError(
      `invalid table name ${name}: table names must start with a letter, contain only letters, `
        + `digits and underscores, and be at most ${MAX_TABLE_NAME} characters`,
    );
  }
}

/**
 * Parses an uploaded file: `{tables, files}`, where `tables` maps each user
 * table to its rows (Convex objects, system fields included) and `files`, for
 * a ZIP with `_storage`, maps storage ids to `{bytes, metadata}`; null otherwise.
 * `maxBytes` bounds a ZIP's uncompressed contents; `schema` (a defineSchema
 * result, or undefined) says which CSV cells may be left out.
 */
export function parseImport(bytes, { format, table, maxBytes, schema }) {
  switch (format) {
    case "jsonLines":
      return single(table, jsonLines(utf8(bytes), inferred));
    case "jsonArray":
      return single(table, jsonArray(bytes));
    case "csv":
      return single(table, csvRows(utf8(bytes), optionalFields(schema, table)));
    case "zip":
      return zipSnapshot(bytes, maxBytes);
    default:
      throw new ImportError(`Unknown import format ${JSON.stringify(format)}`);
  }
}

function single(table, rows) {
  return { tables: new Map([[table, rows]]), files: null };
}

function utf8(bytes) {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new ImportError(`Import wasn't valid UTF8: ${error.message}`);
  }
}

/** The rows of JSON-lines `text`, each decoded by `decode`; a final newline ends the last row. */
function jsonLines(text, decode) {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.map((line, index) => {
    let json;
    try {
      json = decode.parse(line);
    } catch (error) {
      throw new ImportError(`Row ${index + 1} wasn't valid JSON: ${error.message}`);
    }
    return document(json, index + 1, decode.value);
  });
}

function jsonArray(bytes) {
  if (bytes.length > MAX_JSON_ARRAY_BYTES) {
    throw new ImportError(
      `Import is too large for JSON (${bytes.length} bytes > maximum 16 MiB). Consider converting data to JSONLines`,
    );
  }
  let array;
  try {
    array = JSON.parse(utf8(bytes));
  } catch (error) {
    if (error instanceof ImportError) throw error;
    throw new ImportError(`Not valid JSON: ${error.message}`);
  }
  if (!Array.isArray(array)) throw new ImportError("Not a JSON array");
  return array.map((json, index) => document(json, index + 1, inferred.value));
}

/** The top-level fields `schema` declares optional in `table`'s documents. */
function optionalFields(schema, table) {
  const exported = schema === undefined ? { tables: [] } : JSON.parse(schema.export());
  const type = exported.tables.find(({ tableName }) => tableName === table)?.documentType;
  if (type?.type !== "object") return new Set();
  return new Set(Object.entries(type.value).filter(([, { optional }]) => optional).map(([field]) => field));
}

/** The rows of CSV `text`; an empty cell of an `optional` field leaves the field out, as on the backend. */
function csvRows(text, optional) {
  let records;
  try {
    records = parseCsv(text, { relax_column_count: true, skip_empty_lines: true, info: true });
  } catch (error) {
    throw new ImportError(`Failed to parse CSV row ${error.lines ?? 0}: ${error.message}`);
  }
  if (records.length === 0) throw new ImportError("CSV file doesn't have headers");
  const [{ record: header }, ...rows] = records;
  const fields = header.map((cell) => {
    const name = cell.replace(/^ +| +$/g, "");
    const problem = fieldNameProblem(name);
    if (problem !== null) throw new ImportError(`CSV header ${JSON.stringify(name)} isn't a valid field name: ${problem}`);
    return name;
  });
  return rows.map(({ record, info }, index) => {
    if (record.length !== fields.length) {
      throw new ImportError(`CSV row ${info.lines} doesn't have all of the fields in the header`);
    }
    // As on the backend, a cell is a float when it parses as one, else a string.
    const cells = fields.map((name, i) => [name, CSV_FLOAT.test(record[i]) ? Number(csvFloat(record[i])) : record[i]]);
    const object = Object.fromEntries(cells.filter(([name, value]) => value !== "" || !optional.has(name)));
    return document(object, index + 1, (value) => value);
  });
}

function csvFloat(cell) {
  return /inf/i.test(cell) ? cell.replace(/inf(inity)?/i, "Infinity") : cell;
}

/**
 * How a JSON row becomes a Convex value. Rows of a single-table import, or of
 * a ZIP table without a "uniform" generated schema, are plain JSON: every
 * number a float, `{"$integer": ...}` and the like decoded. A "uniform" ZIP
 * table (what `npx convex export` writes) is lossless: `5` is an int64, `5.0` a float.
 */
const inferred = { parse: JSON.parse, value: jsonToConvex };
const uniform = {
  parse: (line) => parseLossless(line, null, (number) => (/^-?\d+$/.test(number) ? BigInt(number) : Number(number))),
  value: fromExportJson,
};

function fromExportJson(json) {
  if (Array.isArray(json)) return json.map(fromExportJson);
  if (json === null || typeof json !== "object") return json;
  const keys = Object.keys(json);
  if (keys.length > 0 && keys[0].startsWith("$")) return jsonToConvex(json);
  return Object.fromEntries(keys.map((key) => [key, fromExportJson(json[key])]));
}

/** Row `number` as a Convex object with valid system fields, or an ImportError naming it. */
function document(json, number, decode) {
  let value;
  try {
    value = decode(json);
  } catch (error) {
    throw new ImportError(`Row ${number} wasn't a valid Convex value: ${error.message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof ArrayBuffer) {
    throw new ImportError(`Row ${number} wasn't an object`);
  }
  for (const [field, fieldValue] of Object.entries(value)) {
    const problem = field === "_id" ? (typeof fieldValue === "string" ? null : "_id must be a string")
      : field === "_creationTime" ? (typeof fieldValue === "number" ? null : "_creationTime must be a number")
        : field.startsWith("_") ? `field name ${field} starting with "_" is reserved for system fields`
          : null;
    if (problem !== null) throw new ImportError(`Row ${number} wasn't a valid Convex value: ${problem}`);
  }
  return value;
}

function fieldNameProblem(name) {
  if (name.length === 0) return "field names can't be empty";
  if (name.startsWith("$")) return "field names can't start with '$'";
  if (!/^[\x20-\x7e]+$/.test(name)) return "field names must only contain printable ASCII characters";
  return null;
}

function zipSnapshot(bytes, maxBytes) {
  let entries;
  let unpacked = 0;
  const sizes = []; // each entry's declared size, in central directory order
  try {
    entries = unzipSync(bytes, {
      filter: ({ name, originalSize }) => {
        unpacked += originalSize;
        if (unpacked > maxBytes) {
          throw new ImportError(`The ZIP file unpacks to more than the ${maxBytes} byte import limit`);
        }
        sizes.push([name, originalSize]);
        return true;
      },
    });
    checkEntries(entries, sizes, centralCrcs(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
  } catch (error) {
    if (error instanceof ImportError) throw error;
    throw new ImportError(`invalid zip file: ${error.message}`);
  }
  const names = Object.keys(entries).filter((name) => !name.endsWith("/"));
  const uniformTables = new Set();
  for (const name of names) {
    const match = name.match(SCHEMA_FILE);
    if (match !== null && utf8(entries[name]).split("\n")[0].trim() === '"uniform"') uniformTables.add(tableIn(name, match));
  }
  const tables = new Map();
  let storageMetadata = null;
  const storageFiles = [];
  for (const name of names) {
    const documents = name.match(DOCUMENTS_FILE);
    if (documents !== null) {
      const table = tableIn(name, documents);
      const rows = () => inFile(name, () => jsonLines(utf8(entries[name]), uniformTables.has(table) ? uniform : inferred));
      if (table === TABLES) {
        for (const { name: listed } of rows()) {
          inFile(name, () => checkTableName(listed));
          if (!tables.has(listed)) tables.set(listed, []);
        }
      } else if (table === STORAGE) {
        storageMetadata = new Map(rows().map((row) => [row._id, row]));
      } else if (!table.startsWith("_")) {
        tables.set(table, rows());
      }
      continue;
    }
    const file = name.match(STORAGE_FILE);
    if (file !== null) {
      componentless(name, file[1]);
      storageFiles.push({ id: file[2], bytes: entries[name] });
    }
  }
  if (storageMetadata === null && storageFiles.length === 0) return { tables, files: null };
  // As on the backend, the files decide what is imported; metadata only describes them.
  const files = new Map(storageFiles.map(({ id, bytes: fileBytes }) => [id, { bytes: fileBytes, metadata: storageMetadata?.get(id) ?? {} }]));
  return { tables, files };
}

/**
 * Fails on an entry whose unpacked bytes differ from the size and CRC-32 its
 * central directory record declares: fflate checks neither and cuts an
 * entry off at its declared size. `sizes` and `crcs` are in record order; of
 * two records with one name, the last one's bytes are kept, as fflate does.
 */
function checkEntries(entries, sizes, crcs) {
  const declared = new Map(sizes.map(([name, size], index) => [name, { size, crc: crcs[index] }]));
  for (const [name, { size, crc }] of declared) {
    const data = entries[name];
    if (data.length !== size || crc32(data) !== crc) {
      throw new ImportError(`corrupt ZIP entry ${name}: its contents do not match the size and CRC-32 it declares`);
    }
  }
}

/** The CRC-32 of each central directory record of the ZIP `view` (a Buffer fflate read), in order. */
function centralCrcs(view) {
  let end = view.length - 22;
  while (view.readUInt32LE(end) !== 0x06054b50) end--;
  let count = view.readUInt16LE(end + 8);
  let offset = view.readUInt32LE(end + 16);
  // Zip64: the end record's locator points to the zip64 end record, which holds the real figures.
  if (end >= 20 && view.readUInt32LE(end - 20) === 0x07064b50) {
    const zip64 = view.readUInt32LE(end - 12);
    if (view.readUInt32LE(zip64) === 0x06064b50) {
      count = view.readUInt32LE(zip64 + 32);
      offset = view.readUInt32LE(zip64 + 48);
    }
  }
  const crcs = [];
  for (let i = 0; i < count; i++) {
    crcs.push(view.readUInt32LE(offset + 16));
    offset += 46 + view.readUInt16LE(offset + 28) + view.readUInt16LE(offset + 30) + view.readUInt16LE(offset + 32);
  }
  return crcs;
}

function tableIn(name, match) {
  componentless(name, match[1]);
  const table = match[2];
  if (table !== TABLES && table !== STORAGE && !table.startsWith("_")) {
    inFile(name, () => checkTableName(table));
  }
  return table;
}

function componentless(name, prefix) {
  if (prefix !== undefined && IN_COMPONENT.test(prefix)) {
    throw new ImportError(`${name}: components are not supported by the local deployment; only the app's own tables can be imported`);
  }
}

/** Runs `parse`, naming `file` in its error: a ZIP holds many tables. */
function inFile(file, parse) {
  try {
    return parse();
  } catch (error) {
    if (error instanceof ImportError) throw new ImportError(`${file}: ${error.message}`);
    throw error;
  }
}

/**
 * What importing `parsed` with `mode` over `documents` (id -> document) does:
 * `{message, requireManualConfirmation}`, the message being the backend's
 * change summary. Throws ImportError when the default mode meets a table
 * that has documents.
 */
export function summarize(parsed, documents, mode) {
  const counts = countByTable(documents);
  const changes = new Map();
  for (const [table, rows] of parsed.tables) changes.set(table, rows.length);
  if (parsed.files !== null) changes.set(STORAGE, parsed.files.size);
  if (mode === "replaceAll") {
    for (const table of counts.keys()) if (!table.startsWith("_") && !changes.has(table)) changes.set(table, 0);
  }
  const rows = [["table", "create", "delete"]];
  let requireManualConfirmation = false;
  for (const table of [...changes.keys()].sort()) {
    const existing = counts.get(table) ?? 0;
    if (mode === "requireEmpty" && existing > 0) {
      throw new ImportError(`Table ${table} already exists. Please choose a new table name or use replace/append modes.`);
    }
    const deleted = mode === "replace" || mode === "replaceAll" ? existing : 0;
    if (deleted > 0) requireManualConfirmation = true;
    const unit = table === STORAGE ? " files" : "";
    rows.push([table, thousands(changes.get(table)), `${thousands(deleted)} of ${thousands(existing)}${unit}`]);
  }
  const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column].length)));
  const lines = rows.map((row) => `${row.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |`);
  lines.splice(1, 0, "-".repeat(widths[0] + 3 + widths[1] + 3 + widths[2] + 2));
  const message = [
    "Import change summary:",
    ...lines,
    "Once the import has started, it will run in the background.\nInterrupting `npx convex import` will not cancel it.",
  ].join("\n");
  return { message, requireManualConfirmation };
}

/**
 * Applies `parsed` with `mode` to `runtime`'s data in one commit; resolves to
 * the number of documents written (files not counted, as on the backend).
 * Throws ImportError, having written nothing, for a refused import.
 */
export async function applyImport(runtime, parsed, mode) {
  const db = runtime.db;
  const schema = runtime.modules.get("schema")?.default;
  const held = []; // blobs kept whatever the documents say until their commit is done
  let refusal = null;
  let written = 0;
  const nextDocId = db._nextDocId;
  try {
    await runtime.transaction(() => {
      try {
        written = stage(db, schema, (bytes) => held.push(runtime.blobs.put(bytes)), parsed, mode);
      } catch (error) {
        refusal = error;
        db._nextDocId = nextDocId;
        throw error; // rolls the transaction back
      }
    });
  } catch (error) {
    throw refusal ?? error;
  } finally {
    for (const sha256 of held) runtime.blobs.settle(sha256);
  }
  return written;
}

/**
 * Stages the import's writes in `db`'s open transaction, storing files with
 * `storeBlob(bytes)` first; returns the number of documents.
 */
function stage(db, schema, storeBlob, parsed, mode) {
  const documents = db._documents;
  summarize(parsed, documents, mode); // the default mode's check, against the data as it is now
  const tables = new Map(parsed.tables);
  if (parsed.files !== null) tables.set(STORAGE, [...parsed.files].map(([id, { metadata }]) => ({ ...metadata, _id: id })));
  const cleared = new Set(mode === "replace" || mode === "replaceAll" ? tables.keys() : []);
  if (mode === "replaceAll") for (const id of Object.keys(documents)) if (!tableOfId(id).startsWith("_")) cleared.add(tableOfId(id));

  const kept = new Set();
  for (const [table, rows] of tables) {
    rows.forEach(({ _id: id }, index) => {
      if (typeof id !== "string" || tableOfId(id) !== table) return;
      if (kept.has(id)) throw new ImportError(`Objects in table "${table}" have duplicate _id fields`);
      if (!cleared.has(table) && documents[id] !== undefined) {
        throw new ImportError(`Row ${index + 1} of table "${table}": a document with _id "${id}" already exists`);
      }
      kept.add(id);
    });
  }
  // New ids count on from above every kept one, so none collides with them.
  const highest = [...kept].reduce((max, id) => Math.max(max, Number.parseInt(id, 10)), 0);
  db._nextDocId = Math.max(db._nextDocId, highest + 1);
  const renamed = new Map();
  const assigned = new Map(); // table -> ids, in row order
  for (const [table, rows] of tables) {
    assigned.set(table, rows.map(({ _id: id }) => {
      if (kept.has(id)) return id;
      const fresh = db._generateId(table);
      if (typeof id === "string") renamed.set(id, fresh);
      return fresh;
    }));
  }

  const staged = {};
  let creationTime = db._lastCreationTime;
  for (const [table, rows] of tables) {
    const ids = assigned.get(table);
    rows.forEach((row, index) => {
      const { _id, _creationTime, ...fields } = row;
      const now = Date.now();
      const time = _creationTime ?? (now <= creationTime ? creationTime + 0.001 : now);
      creationTime = Math.max(creationTime, time);
      const values = renamed.size === 0 ? fields : renameIds(fields, renamed);
      staged[ids[index]] = table === STORAGE ? storedFile(parsed.files.get(_id), values, ids[index], time) : { ...values, _id: ids[index], _creationTime: time };
    });
  }
  try {
    checkSchema(schema, staged);
  } catch (error) {
    if (error instanceof SchemaValidationError) throw new ImportError(error.message);
    throw error;
  }
  if (parsed.files !== null) {
    for (const { bytes } of parsed.files.values()) storeBlob(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  for (const id of Object.keys(documents)) if (cleared.has(tableOfId(id))) db._addWrite(id, null);
  for (const [id, doc] of Object.entries(staged)) db._addWrite(id, doc);
  db._lastCreationTime = creationTime;
  return [...parsed.tables.values()].reduce((sum, rows) => sum + rows.length, 0);
}

/** The `_storage` document of an imported file; its sha256 and size are the file's own. */
function storedFile(file, metadata, id, creationTime) {
  const sha256 = createHash("sha256").update(file.bytes).digest("base64");
  if (typeof metadata.sha256 === "string" && metadata.sha256 !== sha256) {
    throw new ImportError(`_storage file ${id} doesn't match its sha256 ${metadata.sha256} (it has ${sha256})`);
  }
  const contentType = typeof metadata.contentType === "string" ? { contentType: metadata.contentType } : {};
  return { size: file.bytes.byteLength, sha256, ...contentType, _id: id, _creationTime: creationTime };
}

function renameIds(value, renamed) {
  if (typeof value === "string") return renamed.get(value) ?? value;
  if (Array.isArray(value)) return value.map((item) => renameIds(item, renamed));
  if (value === null || typeof value !== "object" || value instanceof ArrayBuffer) return value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, renameIds(item, renamed)]));
}

function countByTable(documents) {
  const counts = new Map();
  for (const id of Object.keys(documents)) {
    const table = tableOfId(id);
    counts.set(table, (counts.get(table) ?? 0) + 1);
  }
  return counts;
}

function thousands(count) {
  return count.toLocaleString("en-US");
}
