// The app's functions running on the official convex-test runtime, plus what
// a deployment needs on top: one strictly increasing clock, durable commits,
// snapshot reads at a timestamp, log capture and backend-shaped errors.
//
// convex-test keeps its database in `DatabaseFake` (`_documents`: id ->
// committed document; `_writes`: a stack of pending write sets, one per
// transaction level). We hook three of its methods on our single instance:
// the outermost `commit` (timestamp, persist, notify), and the outermost
// `startTransaction`/`rollbackWrites` of a query (swap in the documents of a
// snapshot). convex-test is pinned exactly; `checkInternals` fails loudly at
// start-up when an upgrade moves any of this.

import { AsyncLocalStorage, AsyncResource } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import path from "node:path";
import util from "node:util";
import { convexTest } from "convex-test";
import { makeFunctionReference } from "convex/server";
import { Authenticator, normalizeIssuer } from "./auth.mjs";
import { BuildError, buildFunctions, removeOldBuilds } from "./build.mjs";
import { generateTypeScript, writePythonModule } from "./codegen.mjs";
import { typeCheck } from "./typecheck.mjs";
import { systemQuery } from "./cliApi.mjs";
import { routedAt } from "./httpRouter.mjs";
import { FunctionLog, appendLogLine } from "./logs.mjs";
import { paginate } from "./pagination.mjs";
import { checkVector, rankBySearch } from "./search.mjs";
import { ArgumentValidationError, SchemaValidationError, checkArgs, checkSchema } from "./validation.mjs";
import { CronRunner } from "./crons.mjs";
import { Scheduler } from "./scheduler.mjs";
import { BlobStore, UploadTokens, storageSyscalls, uploadSecret } from "./storage.mjs";
import { overrideSyscalls } from "./syscalls.mjs";
import { rememberResponse } from "./store.mjs";
import { Transfers } from "./transfers.mjs";
import { RawJson, stringify } from "./values.mjs";

/** How far back `queryAt` can read; the HTTP API promises at least 30 s. */
const HISTORY_NS = 60_000_000_000n;
const LOG_LEVELS = { log: "LOG", info: "INFO", warn: "WARN", error: "ERROR", debug: "DEBUG" };
// convex-test only needs some module path containing "_generated" to find the
// modules root; we load modules ourselves (see `loadModule`).
const PLACEHOLDER_MODULES = { "./_generated/server.js": async () => ({}) };

/** A read at a timestamp older than the history kept: 503 OutOfRetention over HTTP. */
export class OutOfRetentionError extends Error {}

// Request ids only need to be unique; a counter is cheaper than random bytes per call.
const REQUEST_ID_PREFIX = randomBytes(4).toString("hex");
let requestCount = 0;

const requestStorage = new AsyncLocalStorage();
const snapshotStorage = new AsyncLocalStorage();

// Function logs go to the request that produced them, as `[LEVEL] text` lines, whole
// (appendLogLine bounds them as the backend does, not util.inspect's 10,000 characters).
for (const [method, level] of Object.entries(LOG_LEVELS)) {
  const original = console[method].bind(console);
  console[method] = (...args) => {
    const request = requestStorage.getStore();
    if (request === undefined) original(...args);
    else appendLogLine(request, `[${level}] ${args.map((a) => util.inspect(a, { breakLength: Infinity, maxStringLength: Infinity })).join(" ")}`);
  };
}

export class Runtime {
  #latestTs = 0n;

  constructor({
    functionsDir,
    buildRoot,
    dataFile,
    adminKey,
    storageDir = null,
    secretFile = null,
    codegen = false,
    pythonApi = null,
    maxImportBytes,
    typecheck = "disable",
  }) {
    this.functionsDir = path.resolve(functionsDir);
    /** Every execution's log lines, printed and kept for `/api/stream_function_logs`. */
    this.functionLog = new FunctionLog();
    this.codegen = codegen;
    this.typecheck = typecheck;
    this.pythonApi = pythonApi;
    this.buildRoot = buildRoot;
    this.dataFile = dataFile;
    this.adminKey = adminKey;
    this.blobs = new BlobStore(storageDir);
    this.secretFile = secretFile;
    this.uploadTokens = null; // read from `secretFile` by `start()`, once the data file is ours
    /** Snapshot imports and exports (`npx convex import/export`). */
    this.transfers = new Transfers(this, { maxImportBytes });
    /** The deployment's own URL, for the storage URLs functions hand out; set once it listens. */
    this.cloudUrl = null;
    /** The origin of HTTP actions, for the `request.url` they see; set once it listens. */
    this.siteUrl = null;
    this.buildCount = 0;
    this.buildError = null;
    this.givenKeys = new Map();
    this.listeners = new Set();
    this.crons = new CronRunner(this);
    // Listeners run in the context of start-up, not of the mutation whose
    // commit triggered them, so no convex-test transaction state leaks in.
    this.rootScope = new AsyncResource("flask-convex-notify");
    this.history = []; // [{ts, undo: [[id, previous document or undefined]]}], oldest first
  }

  /**
   * Builds the functions and loads the data file; throws when either fails,
   * unless `serveBrokenBuild`: then a failed build serves no functions (see
   * `buildError`) until `reload()` succeeds.
   */
  async start({ serveBrokenBuild = false } = {}) {
    const state = this.dataFile.load();
    let build;
    try {
      build = await this.build();
      this.writePythonApi(build);
    } catch (error) {
      if (!serveBrokenBuild || !(error instanceof BuildError)) throw error;
      this.buildError = error.message;
      build = { modules: new Map(), schema: undefined, authConfig: undefined };
    }
    this.t = convexTest(build.schema, PLACEHOLDER_MODULES);
    this.db = await captureDatabase(this.t);
    this.uploadTokens = new UploadTokens(uploadSecret(this.secretFile));
    const storage = storageSyscalls(this.db, { blobs: this.blobs, tokens: this.uploadTokens, cloudUrl: () => this.cloudUrl });
    this.scheduler = new Scheduler(this);
    overrideSyscalls({
      asyncHandlers: { ...storage.asyncHandlers, ...this.scheduler.asyncHandlers() },
      jsHandlers: storage.jsHandlers,
    });
    this.install(build);
    Object.assign(this.db, {
      _documents: state.documents,
      _nextDocId: state.nextDocId,
      _lastCreationTime: state.lastCreationTime,
    });
    this.current = state.documents;
    this.responses = state.responses;
    // Variables set at run time persist; those the launcher passes win over them.
    this.env = state.env;
    for (const [name, value] of Object.entries(this.env)) process.env[name] ??= value;
    this.currentShared = false;
    this.#latestTs = this.nextTs(state.ts);
    this.retentionFloor = this.#latestTs;
    this.dataFile.rewrite(this.state());
    this.blobs.sweep(this.current);
    this.hookDatabase();
    await this.scheduler.resume();
  }

  /** Rebuilds after a source change; a failed build keeps the last good one. */
  async reload() {
    try {
      const build = await this.build();
      // Like a push to the real backend: a schema the stored documents break is refused.
      checkSchema(build.schema, this.current);
      const probe = await captureDatabase(convexTest(build.schema, PLACEHOLDER_MODULES));
      this.db._schema = probe._schema;
      this.writePythonApi(build);
      this.install(build);
      this.buildError = null;
    } catch (error) {
      const known = error instanceof BuildError || error instanceof SchemaValidationError;
      this.buildError = known ? error.message : String(error.stack ?? error);
      return false;
    }
    this.notify();
    return true;
  }

  async build() {
    const buildId = ++this.buildCount;
    // `_generated/` first: the functions import it.
    if (this.codegen) await generateTypeScript(this.functionsDir, this.buildRoot);
    const modules = await buildFunctions(this.functionsDir, this.buildRoot, buildId);
    removeOldBuilds(this.buildRoot, buildId);
    // As `npx convex dev`: it checks the functions against the fresh `_generated/`.
    await typeCheck(this.functionsDir, this.typecheck, path.join(this.buildRoot, "typecheck"));
    return {
      modules,
      schema: modules.get("schema")?.default,
      authConfig: modules.get("auth.config")?.default,
    };
  }

  /** Writes the typed Python module (`--python-api`) of `build`, once it is the one that serves. */
  writePythonApi({ modules }) {
    if (this.pythonApi !== null) writePythonModule(this.pythonApi, modules);
  }

  install({ modules, authConfig }) {
    this.crons.update(modules.get("crons")?.default);
    this.modules = modules;
    this.authConfig = authConfig;
    this.auth = new Authenticator(authConfig, this.adminKey, this.givenKeys);
    this.db.componentModules(async (modulePath) => {
      const module = this.modules.get(modulePath);
      if (module === undefined) throw new Error(`Could not find module for: "${modulePath}"`);
      // convex-test's `fetch` routes HTTP actions through the router it loads here.
      return modulePath === "http" && module.default?.isRouter ? { ...module, default: routedAt(module.default, this.siteUrl) } : module;
    });
  }

  /**
   * Verifies tokens of `issuer`, for the provider of auth.config.ts that names
   * it, with `jwks` instead of fetching the provider's keys; kept across reloads.
   */
  trustIssuer(issuer, jwks) {
    this.givenKeys.set(normalizeIssuer(issuer), jwks);
    this.auth = new Authenticator(this.authConfig, this.adminKey, this.givenKeys);
  }

  /** Registers `listener()` to run after every commit, reset and reload. */
  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notify() {
    this.rootScope.runInAsyncScope(() => setImmediate(() => {
      for (const listener of this.listeners) listener();
    }));
  }

  /** The timestamp of the latest snapshot; reading it, unlike `snapshot()`, costs the next commit nothing. */
  get latestTs() {
    return this.#latestTs;
  }

  /** The process-wide clock: strictly increasing, never below a timestamp already handed out. */
  nextTs(after = this.#latestTs) {
    const now = BigInt(Date.now()) * 1_000_000n;
    return now > after ? now : after + 1n;
  }

  /** Makes sure later commits get timestamps above `ts` (one a client has seen elsewhere). */
  observeTs(ts) {
    if (ts > this.#latestTs) this.#latestTs = ts;
  }

  /**
   * The latest snapshot: `{ts, documents}`; `documents` stays frozen while it
   * is read, so the next commit copies them. Only for reads that must span
   * several transactions (a batch, a Transition); one query needs none.
   */
  snapshot() {
    this.currentShared = true;
    return { ts: this.#latestTs, documents: this.current };
  }

  /** The snapshot at `ts`, rebuilt by undoing later commits. */
  snapshotAt(ts) {
    if (ts >= this.#latestTs) return this.snapshot();
    if (ts < this.retentionFloor) {
      throw new OutOfRetentionError(`Timestamp ${ts} is too old: reads are kept for ${HISTORY_NS / 1_000_000_000n} s`);
    }
    const documents = { ...this.current };
    for (let i = this.history.length - 1; i >= 0 && this.history[i].ts > ts; i--) {
      for (const [id, previous] of this.history[i].undo) {
        if (previous === undefined) delete documents[id];
        else documents[id] = previous;
      }
    }
    return { ts, documents };
  }

  state() {
    return {
      ts: this.#latestTs,
      nextDocId: this.db._nextDocId,
      lastCreationTime: this.db._lastCreationTime,
      documents: this.current,
      responses: this.responses,
      env: this.env,
    };
  }

  /** Applies `[{name, value | null}]` (checked by the caller) to the functions' environment, durably. */
  updateEnv(changes) {
    for (const { name, value } of changes) {
      if (value === null) {
        delete process.env[name];
        delete this.env[name];
      } else {
        process.env[name] = value;
        this.env[name] = value;
      }
    }
    this.dataFile.rewrite(this.state());
    this.notify();
  }

  /**
   * What was answered to the WebSocket request `key` whose mutation committed:
   * the response, null if the process died before answering, undefined if it
   * never committed.
   */
  responseTo(key) {
    const text = this.responses.get(key);
    return typeof text === "string" ? new RawJson(text) : text;
  }

  /** Records the response (a protocol message) to request `key`, after its mutation committed. */
  rememberResponse(key, response) {
    const text = stringify(response);
    rememberResponse(this.responses, key, text);
    this.dataFile.appendResponse(this.state(), key, text);
  }

  /**
   * Deletes every document in one commit, so subscribers and snapshots see it
   * like any write. The commit is not appended to the data file, which is
   * rewritten right after.
   */
  async reset() {
    const request = { logLines: [], commitTs: null, unlogged: true };
    await requestStorage.run(request, () => this.t.mutation(async () => {
      for (const id of Object.keys(this.current)) this.db.delete(undefined, id);
    }));
    this.dataFile.rewrite(this.state());
    this.blobs.sweep(this.current);
  }

  hookDatabase() {
    const db = this.db;
    const { startTransaction, rollbackWrites, commit, paginate: scan, _resolveQuerySource: resolveSource, vectorSearch } = db;
    db.paginate = (options) => paginate(scan.bind(db), options, requestStorage.getStore()?.journal);
    // convex-test applies the index's equality filters; the search itself is ours (search.mjs).
    db._resolveQuerySource = (query) => {
      const { source } = query;
      const search = source.type === "Search" ? source.filters.find((f) => f.type === "Search") : undefined;
      if (search === undefined) return resolveSource.call(db, query);
      const filters = source.filters.filter((f) => f !== search);
      const resolved = resolveSource.call(db, { ...query, source: { ...source, filters } });
      return { ...resolved, sortedDocs: rankBySearch(resolved.sortedDocs, search.fieldPath, search.value) };
    };
    db.vectorSearch = (tableAndIndex, vector, expressions, limit) => {
      const [table, index] = tableAndIndex.split(".");
      checkVector(db._schema, table, index, vector);
      return vectorSearch.call(db, tableAndIndex, vector, expressions, limit);
    };
    let swappedOut = null;
    db.startTransaction = () => {
      const snapshot = snapshotStorage.getStore();
      if (db._writes.length === 0 && snapshot !== undefined && snapshot !== db._documents) {
        swappedOut = db._documents;
        db._documents = snapshot;
      }
      startTransaction.call(db);
    };
    db.rollbackWrites = () => {
      rollbackWrites.call(db);
      if (db._writes.length === 0) {
        if (swappedOut !== null) db._documents = swappedOut;
        swappedOut = null;
        db._queryResults = {}; // convex-test never frees finished query streams
      }
    };
    db.commit = (convexTestTs) => {
      if (db._writes.length !== 1) return commit.call(db, convexTestTs);
      const ids = Object.keys(db._writes[0]);
      const request = requestStorage.getStore();
      if (ids.length === 0) {
        commit.call(db, this.#latestTs);
        if (request) request.commitTs = this.#latestTs;
        return undefined;
      }
      if (this.currentShared) {
        db._documents = { ...db._documents };
        this.current = db._documents;
        this.currentShared = false;
      }
      const ts = this.nextTs();
      const undo = ids.map((id) => [id, db._documents[id]]);
      commit.call(db, ts);
      this.#latestTs = ts;
      if (request) request.commitTs = ts;
      this.remember(ts, undo);
      const unnamed = this.blobs.recount(undo, db._documents);
      if (request?.key !== undefined) rememberResponse(this.responses, request.key, null);
      if (!request?.unlogged) {
        this.persist(ids, request?.key);
        // Only once the commit is durable: a crash in between leaves an orphan, swept on start.
        this.blobs.release(unnamed);
      }
      this.notify();
      return undefined;
    };
  }

  /** Appends the commit that wrote `ids`; stops the process when the data file cannot take it. */
  persist(ids, requestKey) {
    const writes = Object.fromEntries(ids.map((id) => [id, this.db._documents[id] ?? null]));
    try {
      this.dataFile.append(this.state(), writes, requestKey);
    } catch (error) {
      process.stderr.write(`flask-convex: cannot write the data file, stopping: ${error.stack}\n`);
      process.exit(1);
    }
  }

  remember(ts, undo) {
    this.history.push({ ts, undo });
    const horizon = ts - HISTORY_NS;
    let drop = 0;
    while (drop < this.history.length - 1 && this.history[drop].ts < horizon) drop++;
    if (drop > 0) {
      this.retentionFloor = this.history[drop - 1].ts;
      this.history.splice(0, drop);
    }
  }

  /**
   * Runs the function at `fn` (a parsed path) as `auth` (`{identity, admin}`);
   * `key` names the WebSocket request, recorded with the commit (`responseTo`);
   * `journal` is `{endCursor}` of a subscribed query, where the end of the
   * page it read is left as `journal.next` (see pagination.mjs).
   * `kind` is "query", "mutation", "action" or "any" (admin `/api/function`);
   * queries read `snapshot`, or else the latest state: convex-test runs one
   * top-level transaction at a time, so no commit lands while a query reads.
   * Never throws for a failure of the function: returns
   * `{ok, value | message, data, hasData, logLines, commitTs}`.
   */
  async run({ fn, args, auth, kind, snapshot, key, journal }) {
    const request = { logLines: [], commitTs: null, key, journal };
    const started = Date.now();
    let type = null;
    try {
      if (fn.module.startsWith("_system/")) return { ok: true, value: this.runSystem(fn, args, auth, snapshot), logLines: [] };
      type = this.resolve(fn, kind, auth.admin);
      checkArgs(this.functionAt(fn), args);
      const accessor = auth.identity ? this.t.withIdentity(auth.identity) : this.t;
      const call = () => accessor[type](makeFunctionReference(fn.display), args);
      const value = await requestStorage.run(request, () => (type === "query" && snapshot !== undefined
        ? snapshotStorage.run(snapshot.documents, call)
        : call()));
      this.functionLog.record(type, fn.display, request.logLines, null, started);
      return { ok: true, value, logLines: request.logLines, commitTs: request.commitTs };
    } catch (error) {
      const requestId = `${REQUEST_ID_PREFIX}${(++requestCount).toString(16).padStart(8, "0")}`;
      const { text, data, hasData } = this.describe(error);
      // A path that names no function ran nothing, so it logs nothing (as in Convex).
      if (type !== null) this.functionLog.record(type, fn.display, request.logLines, text, started);
      const message = `[Request ID: ${requestId}] Server Error\n${text}`;
      return { ok: false, message, data, hasData, logLines: request.logLines };
    }
  }

  /** Runs `fn()` in one committed transaction of its own; resolves to what it returns. */
  transaction(fn) {
    return requestStorage.run({ logLines: [], commitTs: null }, () => this.t.run(async () => fn()));
  }

  /** The registered function at `fn` (a parsed path), if any. */
  functionAt(fn) {
    return this.modules.get(fn.module)?.[fn.name];
  }

  /** Stores an uploaded file as `ctx.storage.store` would; resolves to its storage id. */
  async storeUpload(bytes, contentType) {
    const blob = new Blob([bytes], { type: contentType ?? "" });
    return requestStorage.run({ logLines: [], commitTs: null }, () => this.t.run((ctx) => ctx.storage.store(blob)));
  }

  /** The stored file `storageId` as a Blob with its content type, or null. */
  storedFile(storageId) {
    try {
      return this.db.getFile(storageId);
    } catch {
      return null; // not an id of `_storage`
    }
  }

  /** The default export of `convex/http.ts`, if the app has one. */
  get httpRouter() {
    return this.modules.get("http")?.default;
  }

  /**
   * Runs `request` (`{target, method, headers, body}`) on `convex/http.ts` as
   * `auth`, printing its logs under `route` ("GET /path"); a handler that
   * throws answers 500, as the backend does.
   */
  async runHttpAction(route, request, auth) {
    const record = { logLines: [], commitTs: null };
    const started = Date.now();
    const accessor = auth.identity ? this.t.withIdentity(auth.identity) : this.t;
    const method = request.method === "HEAD" ? "GET" : request.method;
    try {
      const response = await requestStorage.run(record, () => accessor.fetch(request.target, { method, headers: request.headers, body: request.body }));
      this.functionLog.record("httpAction", route, record.logLines, null, started);
      return response;
    } catch (error) {
      const { text } = this.describe(error);
      this.functionLog.record("httpAction", route, record.logLines, text, started);
      return new Response(text, { status: 500 });
    }
  }

  /** A reserved `_system/` query (cliApi.mjs); only admins may run them. */
  runSystem(fn, args, auth, snapshot) {
    const query = systemQuery(fn);
    if (query === undefined || !auth.admin) {
      throw notFound(fn);
    }
    const documents = snapshot?.documents ?? this.current;
    // The deployment's own URLs are built in, as on the backend: `env list` does not show them.
    const { CONVEX_CLOUD_URL, CONVEX_SITE_URL, ...env } = process.env;
    return query({ documents, env, modules: this.modules, schema: this.db._schema, transfers: this.transfers }, args);
  }

  resolve(fn, kind, admin) {
    const func = this.functionAt(fn);
    const type = func?.isQuery ? "query" : func?.isMutation ? "mutation" : func?.isAction ? "action" : null;
    if (type === null || (func.isInternal && !admin)) {
      throw notFound(fn);
    }
    if (kind !== "any" && kind !== type) {
      throw new SystemError(`Trying to execute ${fn.canonical} as ${title(kind)}, but it is defined as ${title(type)}.`);
    }
    return type;
  }

  /** A thrown error as the backend reports it: `{text, data, hasData}`, `text` without the request id. */
  describe(error) {
    if ([SystemError, ArgumentValidationError].some((type) => error instanceof type)) {
      return { text: error.message, hasData: false };
    }
    if (error !== null && typeof error === "object" && Symbol.for("ConvexError") in error) {
      return { text: `Uncaught ConvexError: ${error.message}`, data: error.data, hasData: true };
    }
    const name = error?.name ?? "Error";
    const frames = String(error?.stack ?? "")
      .split("\n")
      .filter((line) => line.includes(this.functionsDir))
      .map((line) => line.replaceAll(this.functionsDir, `../${path.basename(this.functionsDir)}`));
    return { text: [`Uncaught ${name}: ${error?.message ?? error}`, ...frames].join("\n"), hasData: false };
  }
}

/** A failure of the deployment rather than of user code (not found, wrong type). */
class SystemError extends Error {}

function notFound(fn) {
  return new SystemError(
    `Could not find public function for '${fn.display}'. Is it exported from convex/${fn.module}.ts? `
      + "`flask convex dev` reloads on every save and prints the build error if there is one.",
  );
}

function title(kind) {
  return kind[0].toUpperCase() + kind.slice(1);
}

/**
 * Returns the root `DatabaseFake` of a convex-test instance, with a
 * `componentModules(loader)` method that replaces its module loader.
 * convex-test exposes neither; its transaction manager hands the components
 * map to `Object.values` synchronously when a transaction begins.
 */
async function captureDatabase(t) {
  const objectValues = Object.values;
  let components = null;
  Object.values = (object) => {
    if (components === null && object?.[""]?.db !== undefined) components = object;
    return objectValues(object);
  };
  let probe;
  try {
    probe = t.query(async () => null);
  } finally {
    Object.values = objectValues;
  }
  await probe;
  const db = checkInternals(components?.[""]?.db);
  db.componentModules = (loader) => {
    components[""].modules = loader;
  };
  return db;
}

const DATABASE_FIELDS = ["_documents", "_writes", "_nextDocId", "_lastCreationTime", "_schema", "_queryResults"];
const DATABASE_METHODS = [
  "startTransaction",
  "commit",
  "rollbackWrites",
  "delete",
  "paginate",
  "_resolveQuerySource",
  "vectorSearch",
];

function checkInternals(db) {
  const missing = [
    ...DATABASE_FIELDS.filter((field) => db === undefined || !(field in db)),
    ...DATABASE_METHODS.filter((method) => typeof db?.[method] !== "function"),
  ];
  if (missing.length > 0) {
    throw new Error(
      `convex-test internals changed (missing ${missing.join(", ")}): `
        + "flask-convex's local deployment supports convex-test 0.0.60 exactly",
    );
  }
  return db;
}
