// The snapshot ZIP of `npx convex export`, laid out as the backend writes it:
// `README.md`; `_tables/documents.jsonl` (`{name, id}` per user table);
// `<table>/generated_schema.jsonl` ("uniform": values are lossless export
// JSON, `5` an int64 and `5.0` a float) and `<table>/documents.jsonl`; with
// file storage, `_storage/documents.jsonl` (the files' metadata) and one
// `_storage/<id>` entry per file. `npx convex import` (and snapshotImport.mjs)
// reads it back.

import { strToU8, zipSync } from "fflate";
import { tableOfId } from "./validation.mjs";
import { encodeValue } from "./values.mjs";

const README = `# A snapshot of a flask-convex local deployment

Each table's documents are lines of JSON in <table>/documents.jsonl, in the
layout of a Convex snapshot export: \`npx convex import\` or
\`flask convex import\` loads it into any deployment.
`;
/** Table numbers as a fresh deployment hands them out; they only need to be distinct. */
const FIRST_TABLE_NUMBER = 10001;

/** Thrown when a `_storage` document's file is missing from the blob store. */
export class ExportError extends Error {}

/**
 * The ZIP bytes of `documents` (id -> document) with every table of `tables`
 * (names; tables with documents are added), and the files of `blobs` when
 * `includeStorage`.
 */
export function snapshotZip(documents, tables, { blobs, includeStorage }) {
  const byTable = new Map([...tables].map((table) => [table, []]));
  for (const [id, document] of Object.entries(documents)) {
    const table = tableOfId(id);
    if (!byTable.has(table)) byTable.set(table, []);
    byTable.get(table).push(document);
  }
  for (const rows of byTable.values()) rows.sort((a, b) => a._creationTime - b._creationTime);
  const userTables = [...byTable.keys()].filter((table) => !table.startsWith("_")).sort();
  const files = {
    "README.md": strToU8(README),
    "_tables/documents.jsonl": jsonLines(userTables.map((name, index) => ({ name, id: FIRST_TABLE_NUMBER + index }))),
  };
  for (const table of userTables) {
    files[`${table}/generated_schema.jsonl`] = strToU8('"uniform"\n');
    files[`${table}/documents.jsonl`] = strToU8(byTable.get(table).map((doc) => `${encodeValue(doc, "export").text}\n`).join(""));
  }
  if (includeStorage) {
    const stored = byTable.get("_storage") ?? [];
    files["_storage/documents.jsonl"] = jsonLines(stored.map(({ _id, _creationTime, sha256, size, contentType }) => (
      { _id, _creationTime, sha256, size, contentType: contentType ?? null })));
    for (const { _id, sha256 } of stored) {
      const bytes = blobs.get(sha256);
      if (bytes === null) throw new ExportError(`file missing from storage: ${_id}`);
      files[`_storage/${_id}`] = bytes;
    }
  }
  return zipSync(files);
}

function jsonLines(rows) {
  return strToU8(rows.map((row) => `${JSON.stringify(row)}\n`).join(""));
}
