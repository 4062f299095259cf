#!/usr/bin/env node
// Entry point: `node main.mjs --functions DIR [--port P] [--data FILE] [--watch]
// [--env KEY=VALUE ...]`, with the admin key (if any) in FLASK_CONVEX_ADMIN_KEY.
// Prints "Convex local deployment ready at <url>" once it serves; the Python
// launcher waits for that line.

import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createHttpHandler } from "./http.mjs";
import { Runtime } from "./runtime.mjs";
import { DataFile } from "./store.mjs";
import { attachSync } from "./sync.mjs";

const { values: options } = parseArgs({
  options: {
    functions: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    data: { type: "string" },
    watch: { type: "boolean", default: false },
    env: { type: "string", multiple: true, default: [] },
    "ping-interval-ms": { type: "string", default: "15000" },
    "max-body-bytes": { type: "string", default: String(16 * 1024 * 1024) },
    "exit-with-stdin": { type: "boolean", default: false },
  },
});

if (!options.functions) {
  process.stderr.write("error: --functions DIR is required\n");
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
const runtime = new Runtime({ functionsDir: options.functions, buildRoot, dataFile, adminKey });
const maxBodyBytes = Number(options["max-body-bytes"]);

try {
  dataFile.lock();
  process.on("exit", () => dataFile.unlock());
  await runtime.start();
} catch (error) {
  process.stderr.write(`error: cannot start the local deployment: ${error.message ?? error}\n`);
  fs.rmSync(buildRoot, { recursive: true, force: true });
  process.exit(1);
}

const server = http.createServer(createHttpHandler(runtime, { maxBodyBytes }));
const wss = attachSync(server, runtime, {
  pingIntervalMs: Number(options["ping-interval-ms"]),
  maxPayload: maxBodyBytes,
});
server.listen(Number(options.port), options.host, () => {
  const { port } = server.address();
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  process.stdout.write(`Convex local deployment ready at http://${host}:${port}\n`);
});

if (options.watch) watchFunctions(options.functions);

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  for (const client of wss.clients) client.terminate();
  server.close();
  server.closeAllConnections();
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

/** Rebuilds on source changes, a burst of saves at a time, one build at a time. */
function watchFunctions(directory) {
  let timer = null;
  let building = Promise.resolve();
  fs.watch(directory, { recursive: true }, (_event, filename) => {
    if (filename && (filename.startsWith("_generated") || filename.includes("node_modules"))) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      building = building.then(async () => {
        if (await runtime.reload()) {
          process.stdout.write("Reloaded Convex functions\n");
        } else {
          process.stderr.write(`Build failed; still serving the last good build:\n${runtime.buildError}\n`);
        }
      });
    }, 100);
  });
}
