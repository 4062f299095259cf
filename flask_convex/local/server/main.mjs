#!/usr/bin/env node
// Entry point: `node main.mjs --functions DIR [--port P] [--data FILE] [--watch]
// [--env KEY=VALUE ...] [--codegen] [--python-api FILE] [--typecheck enable|try|disable]`, with the admin key (if any) in FLASK_CONVEX_ADMIN_KEY.
// Prints "Convex local deployment ready at <url>" once it serves; the Python
// launcher waits for that line. Exits with EXIT_PORT_IN_USE, silently, when the
// port is taken: the launcher names the option that changes it.

import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createHttpHandler } from "./http.mjs";
import { createSiteHandler } from "./httpActions.mjs";
import { createStorageHandler, isStorageRoute } from "./storageRoutes.mjs";
import { Runtime } from "./runtime.mjs";
import { DataFile } from "./store.mjs";
import { TYPECHECK_MODES } from "./typecheck.mjs";
import { attachSync } from "./sync.mjs";
import { sourceDigests, watchSources } from "./watch.mjs";

/** The exit status when the port is taken, which the Python launcher turns into its own message. */
const EXIT_PORT_IN_USE = 3;

const { values: options } = parseArgs({
  options: {
    functions: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    // HTTP actions' origin; empty means the API's port + 1 (any free one with --port 0).
    "site-port": { type: "string", default: "" },
    data: { type: "string" },
    watch: { type: "boolean", default: false },
    env: { type: "string", multiple: true, default: [] },
    "ping-interval-ms": { type: "string", default: "15000" },
    "max-body-bytes": { type: "string", default: String(16 * 1024 * 1024) },
    "max-upload-bytes": { type: "string", default: String(64 * 1024 * 1024) },
    // An import's upload, and a ZIP's uncompressed contents (`npx convex import`).
    "max-import-bytes": { type: "string", default: String(256 * 1024 * 1024) },
    "exit-with-stdin": { type: "boolean", default: false },
    codegen: { type: "boolean", default: false },
    "python-api": { type: "string" },
    typecheck: { type: "string", default: "disable" },
  },
});

if (!options.functions) {
  process.stderr.write("error: --functions DIR is required\n");
  process.exit(2);
}
if (!TYPECHECK_MODES.includes(options.typecheck)) {
  process.stderr.write(`error: --typecheck must be one of ${TYPECHECK_MODES.join(", ")}\n`);
  process.exit(2);
}

// Functions see exactly the deployment's variables, like `npx convex env set`.
const functionEnv = {};
for (const pair of options.env) {
  const eq = pair.indexOf("=");
  if (eq <= 0) {
    process.stderr.write(`error: --env expects KEY=VALUE, got ${JSON.stringify(pair)}\n`);
    process.exit(2);
  }
  functionEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
}
// The admin key comes in the environment, never argv (other users can read argv).
const adminKey = process.env.FLASK_CONVEX_ADMIN_KEY;
for (const key of Object.keys(process.env)) delete process.env[key];
Object.assign(process.env, functionEnv);
process.setSourceMapsEnabled(true);

const buildRoot = fs.mkdtempSync(path.join(os.tmpdir(), "flask-convex-build-"));
const dataFile = new DataFile(options.data ? path.resolve(options.data) : null);
// Blobs and the upload-signing secret live beside the data file, so they come and go with it.
const storageDir = options.data ? `${path.resolve(options.data)}.storage` : null;
const secretFile = options.data ? `${path.resolve(options.data)}.secret` : null;
const runtime = new Runtime({
  functionsDir: options.functions,
  buildRoot,
  dataFile,
  adminKey,
  storageDir,
  secretFile,
  codegen: options.codegen,
  pythonApi: options["python-api"] ? path.resolve(options["python-api"]) : null,
  maxImportBytes: positiveInteger("max-import-bytes"),
  typecheck: options.typecheck,
});
const maxBodyBytes = positiveInteger("max-body-bytes");

let markStarted;
const started = new Promise((resolve) => {
  markStarted = resolve;
});
// Requests wait for the first build; the launcher only sends any after "ready".
const whenStarted = (handler) => async (req, res) => {
  await started;
  handler(req, res);
};
const api = createHttpHandler(runtime, { maxBodyBytes });
const storage = createStorageHandler(runtime, { maxUploadBytes: positiveInteger("max-upload-bytes") });
const server = http.createServer(whenStarted((req, res) => (isStorageRoute(req.url) ? storage : api)(req, res)));
const site = http.createServer(whenStarted(createSiteHandler(runtime, { maxBodyBytes })));
const wss = attachSync(server, runtime, {
  pingIntervalMs: positiveInteger("ping-interval-ms"),
  maxPayload: maxBodyBytes,
});
const host = options.host.includes(":") ? `[${options.host}]` : options.host;
let cloudUrl;
let siteUrl;
try {
  const port = await listen(server, Number(options.port));
  const asked = Number(options.port);
  const sitePort = options["site-port"] !== "" ? Number(options["site-port"]) : asked === 0 ? 0 : asked + 1;
  cloudUrl = `http://${host}:${port}`;
  siteUrl = `http://${host}:${await listen(site, sitePort)}`;
  runtime.cloudUrl = cloudUrl;
  runtime.siteUrl = siteUrl;
} catch (error) {
  if (error.code !== "EADDRINUSE") throw error;
  process.stderr.write(`port in use: ${error.port}\n`);
  fs.rmSync(buildRoot, { recursive: true, force: true });
  process.exit(EXIT_PORT_IN_USE);
}
// As on a cloud deployment, functions can build links to the API and to HTTP actions.
Object.assign(process.env, { CONVEX_CLOUD_URL: cloudUrl, CONVEX_SITE_URL: siteUrl });

// Taken before the first build, so a save made while it runs is seen as a change.
let built = null;
try {
  dataFile.lock();
  process.on("exit", () => dataFile.unlock());
  if (options.watch) built = sourceDigests(runtime.functionsDir);
  // While watching, a broken build waits for a fix instead of exiting, as `npx convex dev` does.
  await runtime.start({ serveBrokenBuild: options.watch });
} catch (error) {
  process.stderr.write(`error: cannot start the local deployment: ${error.message ?? error}\n`);
  fs.rmSync(buildRoot, { recursive: true, force: true });
  process.exit(1);
}

if (runtime.buildError !== null) reportBuildError("Build failed; no functions are served until it is fixed");
markStarted();
process.stdout.write(`Convex local deployment ready at ${cloudUrl} (HTTP actions at ${siteUrl})\n`);

let watcher = null;
if (options.watch) watcher = watchSources(runtime.functionsDir, built, rebuild);

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  watcher?.close();
  for (const client of wss.clients) client.terminate();
  for (const listening of [server, site]) {
    listening.close();
    listening.closeAllConnections();
  }
  dataFile.close();
  fs.rmSync(buildRoot, { recursive: true, force: true });
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
if (options["exit-with-stdin"]) {
  // The launcher holds our stdin open: when it dies, even by kill -9, so do we.
  process.stdin.on("end", stop);
  process.stdin.resume();
}

/** Reloads after `changed` files changed and says so in one line, or prints the build error. */
async function rebuild(changed) {
  const started = performance.now();
  const names = changed.join(", ");
  if (await runtime.reload()) {
    const ms = Math.round(performance.now() - started);
    process.stdout.write(`${clock()} Reloaded Convex functions (${names}) in ${ms} ms\n`);
  } else {
    reportBuildError(`Build failed (${names}); still serving the last good build`);
  }
}

function reportBuildError(headline) {
  process.stderr.write(`${clock()} ${headline}:\n${runtime.buildError}\n`);
}

/** Listens on `port` (0: any free one) and resolves to the port; rejects on EADDRINUSE with `port` named. */
function listen(listening, port) {
  return new Promise((resolve, reject) => {
    listening.once("error", (error) => reject(Object.assign(error, { port })));
    listening.listen(port, options.host, () => resolve(listening.address().port));
  });
}

/** Option `--name` as a positive integer; anything else (a limit of NaN would be none) stops with a message. */
function positiveInteger(name) {
  const text = options[name];
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(value) || value === 0) {
    process.stderr.write(`error: --${name} must be a positive integer, got ${JSON.stringify(text)}\n`);
    process.exit(2);
  }
  return value;
}

function clock() {
  return new Date().toTimeString().slice(0, 8);
}
