// The storage routes of a deployment: `POST /api/storage/upload?token=...`
// takes a file and answers `{"storageId"}`; `GET /api/storage/<storageId>`
// serves it with its content type.

import { RequestError } from "./errors.mjs";
import { readBody } from "./http.mjs";
import { UploadTokenError } from "./storage.mjs";

const PREFIX = "/api/storage/";

/** Whether `pathname` is a storage route. */
export function isStorageRoute(pathname) {
  return pathname.startsWith(PREFIX);
}

/** Returns the `(req, res)` handler of the storage routes of `runtime`. */
export function createStorageHandler(runtime, { maxUploadBytes }) {
  return async (req, res) => {
    const url = new URL(req.url, "http://storage");
    const cors = req.headers.origin ? { "access-control-allow-origin": "*" } : {};
    try {
      if (req.method === "OPTIONS") {
        res.writeHead(204, { ...cors, "access-control-allow-methods": "GET, POST", "access-control-allow-headers": "*" });
        res.end();
        return;
      }
      if (url.pathname === `${PREFIX}upload` && req.method === "POST") {
        runtime.uploadTokens.check(url.searchParams.get("token"));
        const body = await readBody(req, maxUploadBytes);
        const storageId = await runtime.storeUpload(body, req.headers["content-type"]);
        res.writeHead(200, { ...cors, "content-type": "application/json" });
        res.end(JSON.stringify({ storageId }));
        return;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        throw new RequestError(405, "MethodNotAllowed", `${req.method} is not supported on ${url.pathname}`);
      }
      const file = runtime.storedFile(decodeURIComponent(url.pathname.slice(PREFIX.length)));
      if (file === null) throw new RequestError(404, "FileNotFound", "File not found");
      const bytes = Buffer.from(await file.arrayBuffer());
      res.writeHead(200, {
        ...cors,
        "content-type": file.type || "application/octet-stream",
        "content-length": String(bytes.length),
        "cache-control": "private, max-age=2592000",
      });
      res.end(req.method === "HEAD" ? undefined : bytes);
    } catch (error) {
      const status = error instanceof UploadTokenError ? 401 : error.status ?? 500;
      const code = error instanceof UploadTokenError ? "InvalidUploadToken" : error.code ?? "InternalServerError";
      if (status === 500) process.stderr.write(`flask-convex: internal error on ${req.method} ${url.pathname}: ${error.stack}\n`);
      res.writeHead(status, { ...cors, "content-type": "application/json" });
      res.end(JSON.stringify({ code, message: String(error.message) }));
    }
  };
}
