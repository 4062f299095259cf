// The sync WebSocket (protocol section 3): subscriptions, mutations, actions
// and authentication over one socket. Every change a client can see reaches
// it as a Transition whose startVersion is exactly the previous endVersion.

import { WebSocketServer } from "ws";
import { ANONYMOUS } from "./auth.mjs";
import { AuthError } from "./errors.mjs";
import { SEMVER, requestUrl } from "./http.mjs";
import { InvalidCursorError, parseJournal, serializeJournal } from "./pagination.mjs";
import { InvalidPathError, parseFunctionPath } from "./paths.mjs";
import {
  InvalidArgsError,
  RawJson,
  argsObject,
  decodeTs,
  decodeValue,
  encodeTs,
  failed,
  outcomeFields,
  stringify,
} from "./values.mjs";

const SYNC_PATH = /^\/api(?:\/([^/]+))?\/sync$/;

/** A client message the protocol does not allow: FatalError, then close. */
class ProtocolError extends Error {}

/** Serves `/api/sync` and `/api/<version>/sync` upgrades on `server`. */
export function attachSync(server, runtime, { pingIntervalMs, maxPayload }) {
  const wss = new WebSocketServer({ noServer: true, maxPayload });
  server.on("upgrade", (req, socket, head) => {
    const match = requestUrl(req.url).pathname.match(SYNC_PATH);
    if (match === null) return refuseUpgrade(socket, 404, "NotFound", "No WebSocket route here");
    if (match[1] !== undefined && !SEMVER.test(match[1])) {
      return refuseUpgrade(socket, 400, "InvalidClientVersion", `Invalid client version in path: ${match[1]}`);
    }
    wss.handleUpgrade(req, socket, head, (ws) => new SyncSession(ws, runtime, pingIntervalMs));
    return undefined;
  });
  return wss;
}

function refuseUpgrade(socket, status, code, message) {
  const body = JSON.stringify({ code, message });
  socket.end(
    `HTTP/1.1 ${status} ${status === 400 ? "Bad Request" : "Not Found"}\r\n`
      + `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

class SyncSession {
  constructor(ws, runtime, pingIntervalMs) {
    this.ws = ws;
    this.runtime = runtime;
    this.pingIntervalMs = pingIntervalMs;
    this.sessionId = null;
    this.queries = new Map(); // queryId -> {fn, args, error, lastSent}
    this.querySetVersion = 0;
    this.identityVersion = 0;
    this.auth = ANONYMOUS;
    this.sent = { querySet: 0, identity: 0, ts: 0n };
    this.rerunAll = false;
    // Client messages and Transitions are handled one at a time, in order;
    // mutations have their own chain so a slow one does not hold up queries.
    this.queue = Promise.resolve();
    this.mutations = Promise.resolve();
    this.refreshQueued = false;
    this.pingTimer = null;
    this.unsubscribe = runtime.onChange(() => this.refresh());
    ws.on("message", (data, isBinary) => this.receive(data, isBinary));
    ws.on("close", () => {
      clearTimeout(this.pingTimer);
      this.unsubscribe();
    });
    ws.on("error", () => ws.terminate());
    this.schedulePing();
  }

  send(message) {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(stringify(message));
    this.schedulePing();
  }

  /** Pings only when nothing else was sent for a while: clients drop silent servers. */
  schedulePing() {
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => this.send({ type: "Ping" }), this.pingIntervalMs);
  }

  enqueue(task) {
    this.queue = this.queue.then(task).catch((error) => this.fail(error));
  }

  fail(error) {
    if (error instanceof ProtocolError) {
      this.send({ type: "FatalError", error: error.message });
    } else if (error instanceof AuthError) {
      this.send({ type: "AuthError", error: error.message, baseVersion: this.sent.identity, authUpdateAttempted: true });
    } else {
      process.stderr.write(`flask-convex: sync session failed: ${error?.stack ?? error}\n`);
      this.ws.close(1011, "InternalServerError");
      return;
    }
    this.ws.close();
  }

  receive(data, isBinary) {
    let message;
    try {
      message = JSON.parse(data.toString("utf8"));
    } catch {
      message = null;
    }
    this.enqueue(() => {
      if (isBinary || message === null || typeof message !== "object") {
        throw new ProtocolError("Expected a JSON object in a text frame");
      }
      return this.handle(message);
    });
  }

  async handle(message) {
    if (message.type !== "Connect" && this.sessionId === null) {
      throw new ProtocolError(`Expected Connect as the first message, got ${message.type}`);
    }
    switch (message.type) {
      case "Connect": {
        this.sessionId = String(message.sessionId);
        const observed = message.maxObservedTimestamp == null ? 0n : decodeTs(message.maxObservedTimestamp);
        if (observed === null) throw new ProtocolError("Invalid maxObservedTimestamp");
        this.runtime.observeTs(observed);
        return;
      }
      case "ModifyQuerySet":
        return this.modifyQuerySet(message);
      case "Authenticate":
        return this.authenticate(message);
      case "Mutation":
        this.mutations = this.mutations.then(() => this.mutation(message)).catch((error) => this.fail(error));
        return;
      case "Action":
        this.action(message).catch((error) => this.fail(error));
        return;
      case "Event":
        return;
      default:
        throw new ProtocolError(`Unknown message type: ${JSON.stringify(message.type)}`);
    }
  }

  async modifyQuerySet({ baseVersion, newVersion, modifications }) {
    if (baseVersion !== this.querySetVersion || !(newVersion > baseVersion) || !Array.isArray(modifications)) {
      throw new ProtocolError(`BaseVersionMismatch: query set is at ${this.querySetVersion}, got ${baseVersion} -> ${newVersion}`);
    }
    const added = [];
    const removed = [];
    for (const change of modifications) {
      if (change.type === "Add") {
        this.queries.set(change.queryId, parseQuery(change));
        added.push(change.queryId);
      } else if (change.type === "Remove") {
        this.queries.delete(change.queryId);
        removed.push(change.queryId);
      } else {
        throw new ProtocolError(`Unknown query set modification: ${JSON.stringify(change.type)}`);
      }
    }
    this.querySetVersion = newVersion;
    await this.transition({ added, removed });
  }

  async authenticate(message) {
    if (message.baseVersion !== this.identityVersion) {
      throw new ProtocolError(`Identity version is ${this.identityVersion}, got baseVersion ${message.baseVersion}`);
    }
    const auth = this.runtime.auth;
    switch (message.tokenType) {
      case "User":
        this.auth = { identity: await auth.verifyToken(String(message.value)), admin: false };
        break;
      case "Admin":
        this.auth = auth.adminAuth(String(message.value), message.impersonating ?? message.actingAs ?? null);
        break;
      case "None":
        this.auth = ANONYMOUS;
        break;
      default:
        throw new ProtocolError(`Unknown tokenType: ${JSON.stringify(message.tokenType)}`);
    }
    this.identityVersion += 1;
    this.rerunAll = true;
    await this.transition();
  }

  async mutation({ requestId, udfPath, args }) {
    // Remembered across restarts: a client re-sends unconfirmed mutations
    // after reconnecting, and they must not run twice.
    const key = `${this.sessionId}\u0000${requestId}`;
    let response = this.runtime.responseTo(key);
    if (response === null) {
      // Committed, but the process died before answering: the result is lost.
      response = { type: "MutationResponse", requestId, success: true, result: null, logLines: [], ts: encodeTs(this.runtime.latestTs) };
    } else if (response === undefined) {
      const outcome = await this.call(udfPath, args, "mutation", key);
      response = { type: "MutationResponse", requestId, ...responseFields(outcome) };
      response.ts = outcome.ok ? encodeTs(outcome.commitTs) : null;
      if (outcome.ok) this.runtime.rememberResponse(key, response);
    }
    this.send(response);
    // The client resolves the mutation only on a Transition at or past its commit.
    this.enqueue(() => this.transition());
  }

  async action({ requestId, udfPath, args }) {
    const outcome = await this.call(udfPath, args, "action");
    this.send({ type: "ActionResponse", requestId, ...responseFields(outcome) });
  }

  async call(udfPath, args, kind, key) {
    const { fn, args: decoded, error } = parseQuery({ udfPath, args });
    if (error !== undefined) return failed(error);
    return this.runtime.run({ fn, args: decoded, auth: this.auth, kind, key });
  }

  /** Pushes current results after a commit or reload; coalesces bursts of commits. */
  refresh() {
    if (this.sessionId === null || this.refreshQueued) return;
    this.refreshQueued = true;
    this.enqueue(() => {
      this.refreshQueued = false;
      if (this.runtime.latestTs === this.sent.ts && !this.rerunAll) return undefined;
      return this.transition();
    });
  }

  /** Sends one Transition from the last sent version to the current one. */
  async transition({ added = [], removed = [] } = {}) {
    const snapshot = this.runtime.snapshot();
    const rerunAll = this.rerunAll || snapshot.ts !== this.sent.ts;
    this.rerunAll = false;
    const modifications = [];
    for (const queryId of rerunAll ? [...this.queries.keys()] : added) {
      const query = this.queries.get(queryId);
      if (query === undefined) continue;
      const text = stringify(await this.evaluate(queryId, query, snapshot));
      if (text !== query.lastSent) {
        query.lastSent = text;
        modifications.push(new RawJson(text));
      }
    }
    for (const queryId of removed) modifications.push({ type: "QueryRemoved", queryId });
    const end = { querySet: this.querySetVersion, identity: this.identityVersion, ts: snapshot.ts };
    this.send({ type: "Transition", startVersion: wireVersion(this.sent), endVersion: wireVersion(end), modifications });
    this.sent = end;
  }

  async evaluate(queryId, query, snapshot) {
    const { fn, args, error } = query;
    // The first run's page end is kept, so later runs return the same range.
    const journal = { endCursor: query.journal, next: undefined };
    const outcome = error === undefined
      ? await this.runtime.run({ fn, args, auth: this.auth, kind: "query", snapshot, journal })
      : failed(error);
    if (outcome.ok && journal.next !== undefined) query.journal ??= journal.next;
    const { ok, value, errorMessage, errorData, logLines } = outcomeFields(outcome);
    const sentJournal = serializeJournal(query.journal);
    if (ok) return { type: "QueryUpdated", queryId, value, logLines, journal: sentJournal };
    return { type: "QueryFailed", queryId, errorMessage, logLines, journal: sentJournal, errorData };
  }
}

/**
 * Parses `{udfPath, args: [object], journal?}`; a bad path, args or journal
 * becomes an `error` the client sees.
 */
function parseQuery({ udfPath, args, journal }) {
  try {
    const object = argsObject(args);
    return { fn: parseFunctionPath(udfPath), args: decodeValue(object), journal: parseJournal(journal) };
  } catch (error) {
    if (error instanceof InvalidCursorError) return { error: error.message };
    if (error instanceof InvalidArgsError) return { error: "Function arguments must be a one-element array of an object" };
    if (error instanceof InvalidPathError) return { error: `Invalid function path: ${error.message}` };
    return { error: `Invalid function arguments: ${error.message}` };
  }
}

function responseFields(outcome) {
  const { ok, value, errorMessage, errorData, logLines } = outcomeFields(outcome);
  if (ok) return { success: true, result: value, logLines };
  return { success: false, result: errorMessage, logLines, errorData };
}

function wireVersion({ querySet, identity, ts }) {
  return { querySet, identity, ts: encodeTs(ts) };
}
