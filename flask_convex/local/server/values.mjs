// Convex values on the wire (protocol section 2). Responses are written with a
// small serializer of our own because JSON.stringify writes the float 5 as
// `5`, which the Python HTTP client rejects: Convex floats always carry a
// decimal point here, while protocol counters stay plain integers.

import { jsonToConvex } from "convex/values";

/** Output encodings a request may ask for, by every name clients use. */
const FORMATS = new Map([
  ["convex_encoded_json", "encoded"],
  ["convex_json", "encoded"],
  ["json", "clean"],
  ["convex_clean_json", "clean"],
  ["export_json", "export"],
]);

/** Maps a request's `format` field to an encoding, or null when unknown. */
export function outputEncoding(format) {
  return FORMATS.get(format) ?? null;
}

/** Decodes Convex-encoded JSON (already parsed) into JS Convex values. */
export function decodeValue(json) {
  return jsonToConvex(json);
}

/** Function arguments that are neither an object nor a one-element array of one. */
export class InvalidArgsError extends Error {}

/**
 * Returns the arguments object of a call: clients send an object or, like the
 * npm client, `[object]`. Throws `InvalidArgsError` for anything else; the
 * result is still JSON, for `decodeValue`.
 */
export function argsObject(args) {
  const object = Array.isArray(args) && args.length === 1 ? args[0] : args;
  if (object === null || typeof object !== "object" || Array.isArray(object)) {
    throw new InvalidArgsError("Function arguments must be an object or a one-element array of an object");
  }
  return object;
}

/** The outcome of a call that failed before any function ran (see `Runtime.run`). */
export function failed(message) {
  return { ok: false, message, hasData: false, logLines: [] };
}

/**
 * The protocol fields of an outcome of `Runtime.run`, values encoded: `value`
 * on success; `errorMessage` and `errorData` (undefined without data) on failure.
 */
export function outcomeFields(outcome, encoding = "encoded") {
  const { ok, logLines } = outcome;
  if (ok) return { ok, value: encodeValue(outcome.value, encoding), logLines };
  const errorData = outcome.hasData ? encodeValue(outcome.data, encoding) : undefined;
  return { ok, errorMessage: outcome.message, errorData, logLines };
}

/** A fragment of JSON text embedded verbatim by `stringify`. */
export class RawJson {
  constructor(text) {
    this.text = text;
  }
}

/** Serializes a protocol message; `RawJson` leaves are inlined, undefined fields dropped. */
export function stringify(message) {
  if (message instanceof RawJson) return message.text;
  if (Array.isArray(message)) return `[${message.map(stringify).join(",")}]`;
  if (message !== null && typeof message === "object") {
    const fields = [];
    for (const [key, field] of Object.entries(message)) {
      if (field !== undefined) fields.push(`${JSON.stringify(key)}:${stringify(field)}`);
    }
    return `{${fields.join(",")}}`;
  }
  return JSON.stringify(message);
}

/** Encodes a JS Convex value as JSON text in the given encoding ("encoded", "clean", "export"). */
export function encodeValue(value, encoding = "encoded") {
  return new RawJson(writeValue(value, encoding));
}

function writeValue(value, encoding) {
  switch (typeof value) {
    case "number":
      return writeFloat(value, encoding);
    case "bigint":
      if (encoding === "clean") return `"${value}"`;
      if (encoding === "export") return value.toString();
      return `{"$integer":"${int64ToBase64(value)}"}`;
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "undefined":
      return "null";
    default:
      break;
  }
  if (value === null) return "null";
  if (value instanceof ArrayBuffer) {
    const b64 = JSON.stringify(Buffer.from(value).toString("base64"));
    return encoding === "clean" ? b64 : `{"$bytes":${b64}}`;
  }
  if (Array.isArray(value)) {
    return `[${value.map((item) => writeValue(item, encoding)).join(",")}]`;
  }
  const fields = [];
  for (const [key, field] of Object.entries(value)) {
    if (field !== undefined) fields.push(`${JSON.stringify(key)}:${writeValue(field, encoding)}`);
  }
  return `{${fields.join(",")}}`;
}

function writeFloat(value, encoding) {
  const special = Number.isNaN(value) || !Number.isFinite(value) || Object.is(value, -0);
  if (!special) {
    const text = String(value);
    return /^-?\d+$/.test(text) ? `${text}.0` : text;
  }
  if (encoding === "clean") {
    return Object.is(value, -0) ? "-0.0" : `"${value}"`;
  }
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleLE(value);
  return `{"$float":"${bytes.toString("base64")}"}`;
}

function int64ToBase64(value) {
  const bytes = Buffer.alloc(8);
  bytes.writeBigInt64LE(BigInt.asIntN(64, value));
  return bytes.toString("base64");
}

/** Encodes a timestamp (ns, bigint) as protocol text: base64 of 8 little-endian bytes. */
export function encodeTs(ts) {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(ts);
  return bytes.toString("base64");
}

/** Decodes a protocol timestamp, or returns null when it is not 8 base64 bytes. */
export function decodeTs(text) {
  if (typeof text !== "string") return null;
  const bytes = Buffer.from(text, "base64");
  if (bytes.length !== 8 || bytes.toString("base64") !== text) return null;
  return bytes.readBigUInt64LE();
}
