// File storage: blobs kept beside the data file, URLs on this deployment.
//
// convex-test keeps blobs in memory and hands out URLs on a made-up cloud host.
// Here a blob is written (fsync'ed) to `<data file>.storage/<sha256>` before its
// `_storage` document commits, and removed only after the commit that deleted
// the last document naming it, so a `kill -9` never leaves a document without
// its file; documents persist with the rest of the data, and blobs no document
// names are swept on start. Uploads go to `POST /api/storage/upload?token=...`
// and files are served from `GET /api/storage/<storageId>`, as on a cloud
// deployment; the tokens are signed with a secret kept in `<data file>.secret`,
// so upload URLs outlive restarts as the backend's do.

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { AsyncLocalStorage } from "node:async_hooks";
import { writeFileDurably } from "./durable.mjs";

/** How long an upload URL stays valid, as on the backend. */
const UPLOAD_URL_TTL_MS = 60 * 60 * 1000;

const contentTypeStorage = new AsyncLocalStorage();

/** An upload URL whose token is missing, forged or expired. */
export class UploadTokenError extends Error {}

/** Blob files by the base64 sha256 in their `_storage` document; `dir` null keeps them in memory. */
export class BlobStore {
  constructor(dir) {
    this.dir = dir;
    this.memory = new Map();
    // sha256 -> uploads between `put` and `settle`: their documents are not committed yet.
    this.uploading = new Map();
    // sha256 -> committed `_storage` documents naming it: set by `sweep`, kept by `recount`.
    this.named = new Map();
    if (dir !== null) fs.mkdirSync(dir, { recursive: true });
  }

  /**
   * Writes `bytes` durably; returns the base64 sha256 that names them. The
   * blob is kept until `settle(sha256)`, whatever the documents say.
   */
  put(bytes) {
    const sha256 = createHash("sha256").update(bytes).digest("base64");
    if (this.dir === null) this.memory.set(this.#fileName(sha256), bytes);
    else if (!fs.existsSync(this.#file(sha256))) writeFileDurably(this.#file(sha256), bytes);
    this.uploading.set(sha256, (this.uploading.get(sha256) ?? 0) + 1);
    return sha256;
  }

  /** The bytes named `sha256`, or null. */
  get(sha256) {
    if (this.dir === null) return this.memory.get(this.#fileName(sha256)) ?? null;
    try {
      return fs.readFileSync(this.#file(sha256));
    } catch (error) {
      if (error.code === "ENOENT") return null;
      throw error;
    }
  }

  /** Ends the hold `put` took on `sha256`, once its document committed or failed to. */
  settle(sha256) {
    const count = this.uploading.get(sha256) - 1;
    if (count > 0) this.uploading.set(sha256, count);
    else this.uploading.delete(sha256);
  }

  /**
   * Counts the `_storage` documents a commit changed (`undo` as Runtime
   * records it, `documents` after the commit); returns the sha256s that no
   * document names any more, for `release` once the commit is durable.
   */
  recount(undo, documents) {
    const unnamed = [];
    for (const [id, previous] of undo) {
      if (!isStorageId(id)) continue;
      const current = documents[id];
      if (current !== undefined) this.#name(current.sha256, 1);
      if (previous !== undefined && this.#name(previous.sha256, -1) === 0) unnamed.push(previous.sha256);
    }
    return unnamed;
  }

  /** Removes the blobs of `sha256s` that no document or upload names. */
  release(sha256s) {
    for (const sha256 of sha256s) if (!this.named.has(sha256) && !this.uploading.has(sha256)) this.#remove(this.#fileName(sha256));
  }

  /**
   * Counts the `_storage` documents of `documents` afresh and removes every
   * blob (and temp file of a torn write) that none of them names.
   */
  sweep(documents) {
    this.named = new Map();
    for (const [id, doc] of Object.entries(documents)) if (isStorageId(id)) this.#name(doc.sha256, 1);
    const kept = new Set([...this.named.keys(), ...this.uploading.keys()].map((sha256) => this.#fileName(sha256)));
    const names = this.dir === null ? [...this.memory.keys()] : fs.readdirSync(this.dir);
    for (const name of names) if (!kept.has(name)) this.#remove(name);
  }

  /** Adds `change` to the documents naming `sha256`; returns how many now do. */
  #name(sha256, change) {
    const count = (this.named.get(sha256) ?? 0) + change;
    if (count > 0) this.named.set(sha256, count);
    else this.named.delete(sha256);
    return count;
  }

  #remove(name) {
    if (this.dir === null) this.memory.delete(name);
    else fs.rmSync(path.join(this.dir, name), { force: true });
  }

  #file(sha256) {
    return path.join(this.dir, this.#fileName(sha256));
  }

  #fileName(sha256) {
    // base64url keeps the name a single path segment.
    return Buffer.from(sha256, "base64").toString("base64url");
  }
}

/** Whether `id` is a document id of `_storage` (convex-test ids are a counter then the table name). */
function isStorageId(id) {
  return /^[0-9]+_storage$/.test(id);
}

/**
 * The secret upload tokens are signed with: read from `file`, or created
 * there once (owner-only, fsync'ed) when missing; random for this process
 * when `file` is null.
 */
export function uploadSecret(file) {
  if (file === null) return randomBytes(32);
  try {
    return parseSecret(file, fs.readFileSync(file, "utf8"));
  } catch (error) {
    if (error.code !== "ENOENT") throw error;
  }
  const secret = randomBytes(32);
  writeFileDurably(file, `${secret.toString("hex")}\n`, 0o600);
  return secret;
}

function parseSecret(file, text) {
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new Error(`${file} is not an upload secret (64 hex digits); delete it to make a new one`);
  }
  return Buffer.from(hex, "hex");
}

/** Signs and checks upload tokens; `secret` outlives restarts only if the caller keeps it (`uploadSecret`). */
export class UploadTokens {
  constructor(secret) {
    this.secret = secret;
  }

  issue(now = Date.now()) {
    const payload = `${now + UPLOAD_URL_TTL_MS}.${randomBytes(8).toString("hex")}`;
    return `${payload}.${this.#sign(payload)}`;
  }

  check(token, now = Date.now()) {
    const [expires, nonce, signature] = String(token ?? "").split(".");
    const expected = this.#sign(`${expires}.${nonce}`);
    const given = Buffer.from(signature ?? "");
    if (given.length !== expected.length || !timingSafeEqual(given, Buffer.from(expected))) {
      throw new UploadTokenError("Invalid upload token");
    }
    if (Number(expires) < now) throw new UploadTokenError("The upload URL has expired: generate a new one");
  }

  #sign(payload) {
    return createHmac("sha256", this.secret).update(payload).digest("base64url");
  }
}

/**
 * Makes `db` (convex-test's root database) keep blobs in `blobs`, and returns
 * the storage syscalls (see syscalls.mjs) that hand out URLs under
 * `cloudUrl()`, with upload URLs signed by `tokens`.
 */
export function storageSyscalls(db, { blobs, tokens, cloudUrl }) {
  const { insert } = db;
  // convex-test records size and sha256; the backend also records the content type.
  db.insert = function (table, value) {
    const contentType = contentTypeStorage.getStore();
    if (table === "_storage" && contentType) value = { ...value, contentType };
    return insert.call(this, table, value);
  };
  db.storeFile = () => {};
  db.getFile = (storageId) => {
    const metadata = db.get("_storage", storageId);
    if (metadata === null) return null;
    const bytes = blobs.get(metadata.sha256);
    return bytes === null ? null : new Blob([bytes], { type: metadata.contentType ?? "" });
  };
  return {
    asyncHandlers: {
      "1.0/storageGenerateUploadUrl": () => `${cloudUrl()}/api/storage/upload?token=${tokens.issue()}`,
      "1.0/storageGetUrl": ({ storageId }) => (db.get("_storage", storageId) === null ? null : fileUrl(cloudUrl(), storageId)),
      "1.0/storageGetMetadata": ({ storageId }) => {
        const metadata = db.get("_storage", storageId);
        if (metadata === null) return null;
        const { sha256, size, contentType = null } = metadata;
        return { storageId, sha256, size, contentType };
      },
    },
    jsHandlers: {
      // The file first, its document second: a crash between them leaves no document without a file.
      "storage/storeBlob": async (args, fallThrough) => {
        const sha256 = blobs.put(Buffer.from(await args.blob.arrayBuffer()));
        try {
          return await contentTypeStorage.run(args.blob.type || undefined, fallThrough);
        } finally {
          blobs.settle(sha256);
        }
      },
    },
  };
}

/** Where `storageId`'s file is served. */
export function fileUrl(cloudUrl, storageId) {
  return `${cloudUrl}/api/storage/${storageId}`;
}
