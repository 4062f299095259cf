// File storage: blobs kept beside the data file, URLs on this deployment.
//
// convex-test keeps blobs in memory and hands out URLs on a made-up cloud host.
// Here a blob is written (fsync'ed) to `<data file>.storage/<sha256>` before its
// `_storage` document commits, so a `kill -9` never leaves a document without
// its file; documents persist with the rest of the data. Uploads go to
// `POST /api/storage/upload?token=...` and files are served from
// `GET /api/storage/<storageId>`, as on a cloud deployment.

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { AsyncLocalStorage } from "node:async_hooks";

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
    if (dir !== null) fs.mkdirSync(dir, { recursive: true });
  }

  /** Writes `bytes` durably; returns the base64 sha256 that names them. */
  put(bytes) {
    const sha256 = createHash("sha256").update(bytes).digest("base64");
    if (this.dir === null) {
      this.memory.set(sha256, bytes);
      return sha256;
    }
    const file = this.#file(sha256);
    if (fs.existsSync(file)) return sha256;
    const temp = `${file}.${process.pid}.tmp`;
    const fd = fs.openSync(temp, "w");
    try {
      fs.writeSync(fd, bytes);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
    const dirFd = fs.openSync(this.dir, "r");
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
    return sha256;
  }

  /** The bytes named `sha256`, or null. */
  get(sha256) {
    if (this.dir === null) return this.memory.get(sha256) ?? null;
    try {
      return fs.readFileSync(this.#file(sha256));
    } catch (error) {
      if (error.code === "ENOENT") return null;
      throw error;
    }
  }

  #file(sha256) {
    // base64url keeps the name a single path segment.
    return path.join(this.dir, Buffer.from(sha256, "base64").toString("base64url"));
  }
}

/** Signs and checks upload tokens; `secret` outlives restarts only if the caller keeps it. */
export class UploadTokens {
  constructor(secret = randomBytes(32)) {
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
        blobs.put(Buffer.from(await args.blob.arrayBuffer()));
        return contentTypeStorage.run(args.blob.type || undefined, fallThrough);
      },
    },
  };
}

/** Where `storageId`'s file is served. */
export function fileUrl(cloudUrl, storageId) {
  return `${cloudUrl}/api/storage/${storageId}`;
}
