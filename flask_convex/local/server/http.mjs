// The Convex HTTP API (protocol section 1). Function failures are HTTP 200
// with `status: "error"`; anything wrong with the request itself is a non-2xx
// answer with `{code, message}`, which both official clients expect.

import { EnvVarError, checkEnvChanges } from "./cliApi.mjs";
import { RequestError } from "./errors.mjs";
import { InvalidPathError, parseFunctionPath } from "./paths.mjs";
import { OutOfRetentionError } from "./runtime.mjs";
import {
  InvalidArgsError,
  argsObject,
  decodeTs,
  decodeValue,
  encodeTs,
  outcomeFields,
  outputEncoding,
  stringify,
} from "./values.mjs";

/** A route's answer that is a file rather than JSON. */
class FileResponse {
  constructor(bytes, contentType, headers) {
    this.bytes = bytes;
    this.contentType = contentType;
    this.headers = headers;
  }
}

/** A client version as it appears in `Convex-Client` and `/api/<version>/sync`. */
export const SEMVER = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
const CORS_METHODS = "GET, POST, OPTIONS, PATCH, DELETE, PUT";
const EXPORT_PREFIX = "/api/export/zip/";

/**
 * Parses a request target, collapsing repeated slashes: clients given a
 * deployment URL with a trailing `/` send `//api/...`.
 */
export function requestUrl(target) {
  const url = new URL(target.replace(/^\/+/, "/"), "http://localhost");
  url.pathname = url.pathname.replace(/\/{2,}/g, "/");
  return url;
}

/** Returns the `(req, res)` handler of the HTTP API for `runtime`. */
export function createHttpHandler(runtime, { maxBodyBytes }) {
  const routes = {
    "POST /api/query": (ctx) => runOne(ctx, "query"),
    "GET /api/query": (ctx) => runOne(ctx, "query"),
    "POST /api/mutation": (ctx) => runOne(ctx, "mutation"),
    "POST /api/action": (ctx) => runOne(ctx, "action"),
    "POST /api/function": (ctx) => runOne(ctx, "any"),
    "POST /api/query_batch": queryBatch,
    "POST /api/query_ts": async () => ({ ts: encodeTs(runtime.latestTs) }),
    "POST /api/query_at_ts": queryAtTs,
    "POST /api/debug_event": async () => ({}),
    "POST /api/update_environment_variables": async (ctx) => {
      requireAdmin(ctx, "Setting environment variables");
      const { changes } = await ctx.json();
      try {
        checkEnvChanges(changes);
      } catch (error) {
        if (error instanceof EnvVarError) throw new RequestError(400, "InvalidEnvironmentVariables", error.message);
        throw error;
      }
      runtime.updateEnv(changes);
      return {};
    },
    "POST /api/import/start_upload": async (ctx) => ({ uploadToken: transfers(ctx).startUpload() }),
    "POST /api/import/upload_part": async (ctx) => {
      const { searchParams } = ctx.url;
      return transfers(ctx).uploadPart(searchParams.get("uploadToken"), searchParams.get("partNumber"), ctx.body);
    },
    "POST /api/import/finish_upload": async (ctx) => {
      const { import: args, uploadToken, partTokens } = await ctx.json();
      return { importId: transfers(ctx).finishUpload(args, uploadToken, partTokens) };
    },
    "POST /api/perform_import": async (ctx) => {
      await transfers(ctx).performImport((await ctx.json()).importId);
      return {};
    },
    "POST /api/cancel_import": async (ctx) => {
      transfers(ctx).cancelImport((await ctx.json()).importId);
      return {};
    },
    "POST /api/export/request/zip": async (ctx) => {
      transfers(ctx).requestExport(ctx.url.searchParams.get("includeStorage") === "true");
      return {};
    },
    "GET /api/stream_function_logs": async (ctx) => {
      requireAdmin(ctx, "Streaming function logs");
      const cursor = Number(ctx.url.searchParams.get("cursor") ?? "0");
      if (!Number.isFinite(cursor) || cursor < 0) {
        throw new RequestError(400, "InvalidCursor", "`cursor` must be a non-negative number of milliseconds");
      }
      return runtime.functionLog.since(cursor);
    },
    "POST /_flask_convex/reset": async (ctx) => {
      // An admin key, not just loopback: a cross-site form POST must not wipe the data.
      requireAdmin(ctx, "Resetting");
      await runtime.reset();
      return { ts: encodeTs(runtime.latestTs) };
    },
    "POST /_flask_convex/trust_issuer": async (ctx) => {
      requireAdmin(ctx, "Trusting an issuer");
      const { issuer, jwks } = await ctx.json();
      if (typeof issuer !== "string" || !Array.isArray(jwks?.keys)) {
        throw new RequestError(400, "BadRequest", "Expected {issuer: string, jwks: {keys: [...]}}");
      }
      runtime.trustIssuer(issuer, jwks);
      return {};
    },
    "GET /_flask_convex/status": async (ctx) => {
      localOnly(ctx);
      return { ts: encodeTs(runtime.latestTs), buildError: runtime.buildError };
    },
  };

  /** The snapshot transfers, for an admin; anyone else is refused. */
  function transfers(ctx) {
    requireAdmin(ctx, "Importing and exporting");
    return runtime.transfers;
  }

  async function downloadExport(ctx) {
    const ts = ctx.pathname.slice(EXPORT_PREFIX.length);
    const bytes = transfers(ctx).exportBytes(ts);
    if (bytes === null) throw new RequestError(404, "ExportNotFound", `No completed snapshot export at timestamp ${ts}`);
    return new FileResponse(bytes, "application/zip", { "content-disposition": `attachment; filename=snapshot_${ts}.zip` });
  }

  async function runOne(ctx, kind) {
    const body = ctx.method === "GET" ? queryParams(ctx.url) : await ctx.json();
    if (kind === "any") {
      if (!ctx.auth.admin) throw new RequestError(403, "BadDeployKey", "/api/function requires an admin key");
      if (body.componentPath) throw new RequestError(400, "BadComponentPath", "Only the root component exists locally");
    }
    const encoding = ctx.encoding(body.format);
    const fn = functionPath(body.path);
    return envelope(await runtime.run({ fn, args: functionArgs(body.args), auth: ctx.auth, kind }), encoding);
  }

  async function runPath(ctx) {
    const segments = ctx.pathname.slice("/api/run/".length).split("/").filter(Boolean).map(decodeURIComponent);
    if (segments.length < 2) {
      throw new RequestError(400, "MissingIdentifier", "Expected /api/run/<module path>/<function name>");
    }
    const body = await ctx.json();
    const encoding = outputEncodingOf(body.format, "clean");
    const fn = functionPath(`${segments.slice(0, -1).join("/")}:${segments.at(-1)}`);
    return envelope(await runtime.run({ fn, args: functionArgs(body.args), auth: ctx.auth, kind: "any" }), encoding);
  }

  async function queryBatch(ctx) {
    const body = await ctx.json();
    if (!Array.isArray(body.queries)) {
      throw new RequestError(400, "BadJsonBody", "Expected `queries` to be an array of {path, args, format?}");
    }
    const calls = body.queries.map((query) => {
      if (query === null || typeof query !== "object") {
        throw new RequestError(400, "BadJsonBody", "Each query must be an object {path, args, format?}");
      }
      return { fn: functionPath(query.path), args: functionArgs(query.args), encoding: ctx.encoding(query.format) };
    });
    const snapshot = runtime.snapshot();
    const results = [];
    for (const { fn, args, encoding } of calls) {
      results.push(envelope(await runtime.run({ fn, args, auth: ctx.auth, kind: "query", snapshot }), encoding));
    }
    return { results, ts: encodeTs(snapshot.ts) };
  }

  async function queryAtTs(ctx) {
    const body = await ctx.json();
    const ts = decodeTs(body.ts);
    if (ts === null) throw new RequestError(400, "InvalidTimestamp", "`ts` must be base64 of 8 little-endian bytes");
    const encoding = ctx.encoding(body.format);
    const fn = functionPath(body.path);
    const args = functionArgs(body.args);
    runtime.observeTs(ts);
    let snapshot;
    try {
      snapshot = runtime.snapshotAt(ts);
    } catch (error) {
      if (error instanceof OutOfRetentionError) throw new RequestError(503, "OutOfRetention", error.message);
      throw error;
    }
    return envelope(await runtime.run({ fn, args, auth: ctx.auth, kind: "query", snapshot }), encoding);
  }

  return async (req, res) => {
    const url = requestUrl(req.url);
    const { pathname } = url;
    const headers = pathname.startsWith("/api/") ? corsHeaders(req) : {};
    const reply = (status, payload) => {
      if (payload instanceof FileResponse) {
        res.writeHead(status, { "content-type": payload.contentType, "content-length": payload.bytes.length, ...payload.headers, ...headers });
        res.end(payload.bytes);
        return;
      }
      const text = stringify(payload);
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(text);
    };
    try {
      if (req.method === "OPTIONS" && pathname.startsWith("/api/")) {
        res.writeHead(204, headers);
        res.end();
        return;
      }
      const route = pathname.startsWith("/api/run/") && req.method === "POST"
        ? runPath
        : pathname.startsWith(EXPORT_PREFIX) && req.method === "GET"
          ? downloadExport
          : routes[`${req.method} ${pathname}`];
      if (route === undefined) {
        const known = Object.keys(routes).some((key) => key.endsWith(` ${pathname}`));
        throw known
          ? new RequestError(405, "MethodNotAllowed", `${req.method} is not supported on ${pathname}`)
          : new RequestError(404, "NotFound", `No route for ${req.method} ${pathname}`);
      }
      const body = await readBody(req, maxBodyBytes);
      const client = parseClientHeader(req.headers["convex-client"]);
      const ctx = {
        method: req.method,
        url,
        pathname,
        remoteAddress: req.socket.remoteAddress,
        body,
        json: async () => parseJsonBody(req, body),
        encoding: (format) => outputEncodingOf(format, client.defaultEncoding),
        auth: await runtime.auth.fromHeader(req.headers.authorization),
      };
      reply(200, await route(ctx));
    } catch (error) {
      if (error instanceof RequestError) {
        reply(error.status, { code: error.code, message: error.message });
      } else {
        process.stderr.write(`flask-convex: internal error on ${req.method} ${pathname}: ${error.stack}\n`);
        reply(500, { code: "InternalServerError", message: String(error.message ?? error) });
      }
    }
  };
}

/** The response body of one function call (protocol 1.5). */
function envelope(outcome, encoding) {
  const { ok, value, errorMessage, errorData, logLines: lines } = outcomeFields(outcome, encoding);
  const logLines = lines.length > 0 ? lines : undefined;
  if (ok) return { status: "success", value, logLines };
  return { status: "error", errorMessage, errorData, logLines };
}

function functionPath(path) {
  if (path === undefined) throw new RequestError(400, "MissingIdentifier", "Missing function `path`");
  try {
    return parseFunctionPath(path);
  } catch (error) {
    if (error instanceof InvalidPathError) {
      throw new RequestError(400, "BadConvexFunctionIdentifier", error.message);
    }
    throw error;
  }
}

/** Decodes a request's `args` (missing means `{}`); a bad one is a 400 BadJsonBody. */
function functionArgs(args) {
  let object;
  try {
    object = argsObject(args ?? {});
  } catch (error) {
    if (!(error instanceof InvalidArgsError)) throw error;
    throw new RequestError(400, "BadJsonBody", "`args` must be an object or a one-element array of an object");
  }
  try {
    return decodeValue(object);
  } catch (error) {
    throw new RequestError(400, "BadJsonBody", `Invalid Convex value in \`args\`: ${error.message}`);
  }
}

function outputEncodingOf(format, fallback) {
  if (format === undefined || format === null) return fallback;
  const encoding = outputEncoding(format);
  if (encoding === null) throw new RequestError(400, "BadFormat", `Invalid format: ${JSON.stringify(format)}`);
  return encoding;
}

/**
 * Reads the `Convex-Client: <name>-<semver>` header. Only npm <= 1.4.1 and
 * python <= 0.5.0 default to the lossless encoding; everyone else to "json".
 */
function parseClientHeader(header) {
  if (header === undefined) return { defaultEncoding: "clean" };
  const parts = header.split("-");
  for (let i = 1; i < parts.length; i++) {
    const version = parts.slice(i).join("-");
    if (!SEMVER.test(version)) continue;
    const name = parts.slice(0, i).join("-");
    const [major, minor, patch] = version.split(/[.+-]/).map(Number);
    const number = major * 1e6 + minor * 1e3 + patch;
    const legacy = (name === "npm" && number <= 1004001) || (name.startsWith("python") && number <= 5000);
    return { defaultEncoding: legacy ? "encoded" : "clean" };
  }
  throw new RequestError(400, "InvalidClientVersion", `Invalid Convex-Client header: ${JSON.stringify(header)}`);
}

function parseJsonBody(req, body) {
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new RequestError(400, "BadJsonBody", "Expected request with `Content-Type: application/json`");
  }
  let parsed;
  try {
    parsed = JSON.parse(body.length === 0 ? "{}" : body.toString("utf8"));
  } catch (error) {
    throw new RequestError(400, "BadJsonBody", `Failed to parse JSON body: ${error.message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new RequestError(400, "BadJsonBody", "Expected a JSON object body");
  }
  return parsed;
}

function queryParams(url) {
  const args = url.searchParams.get("args");
  let parsedArgs;
  try {
    parsedArgs = args === null ? {} : JSON.parse(args);
  } catch (error) {
    throw new RequestError(400, "BadJsonBody", `Failed to parse \`args\`: ${error.message}`);
  }
  return {
    path: url.searchParams.get("path") ?? undefined,
    args: parsedArgs,
    format: url.searchParams.get("format") ?? undefined,
  };
}

/** Reads the whole body; one larger than `limit` is drained and refused with 413. */
export function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > limit) {
        reject(new RequestError(413, "PayloadTooLarge", `Request body of ${size} bytes exceeds the ${limit} byte limit`));
      } else {
        resolve(Buffer.concat(chunks));
      }
    });
    req.on("error", reject);
  });
}

function corsHeaders(req) {
  const origin = req.headers.origin;
  if (origin === undefined) return {};
  return {
    "access-control-allow-origin": origin,
    "access-control-allow-credentials": "true",
    "access-control-allow-methods": CORS_METHODS,
    "access-control-allow-headers": req.headers["access-control-request-headers"] ?? "*",
    "access-control-max-age": "86400",
    vary: "Origin",
  };
}

function requireAdmin(ctx, what) {
  if (!ctx.auth.admin) throw new RequestError(403, "BadDeployKey", `${what} requires an admin key`);
}

function localOnly(ctx) {
  const address = ctx.remoteAddress ?? "";
  if (!(address.startsWith("127.") || address === "::1" || address.startsWith("::ffff:127."))) {
    throw new RequestError(403, "Forbidden", "Admin routes only answer loopback clients");
  }
}
