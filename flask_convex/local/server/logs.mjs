// What functions print reaches the developer's terminal, named after the
// function, as `npx convex dev` shows a deployment's logs:
//   [CONVEX Q(tasks:list)] [LOG] 'hello'
//   [CONVEX M(tasks:add)] Uncaught Error: boom
// Every execution of every kind of function (queries, mutations, actions,
// scheduled functions, HTTP actions) is also kept, a bounded number of them,
// for `GET /api/stream_function_logs`, which `npx convex logs` and
// `flask convex logs` long-poll with a cursor as on the real backend.

const KIND_LETTERS = { query: "Q", mutation: "M", action: "A", httpAction: "H" };
const UDF_TYPES = { query: "Query", mutation: "Mutation", action: "Action", httpAction: "HttpAction" };
const ZERO_USAGE = {
  databaseReadBytes: 0,
  databaseWriteBytes: 0,
  databaseReadDocuments: 0,
  storageReadBytes: 0,
  storageWriteBytes: 0,
  vectorIndexReadBytes: 0,
  vectorIndexWriteBytes: 0,
  actionMemoryUsedMb: null,
};

// The backend's limits on what one execution may log, with its own notices.
const MAX_LOG_LINES = 256;
const MAX_LOG_CHARS = 1_000_000;
const LINES_OVERFLOW = `[ERROR] Log overflow (maximum ${MAX_LOG_LINES}). Remaining log lines omitted.`;
const CHARS_OVERFLOW = "[ERROR] Log overflow (maximum 1M characters). Remaining log lines omitted.";

/**
 * Adds `line` to the lines of `request` (`{logLines}`) within the backend's
 * limits: the last line allowed becomes an overflow notice, and later lines
 * are dropped, so what one execution keeps is bounded.
 */
export function appendLogLine(request, line) {
  const lines = request.logLines;
  if (request.logOverflowed) return;
  const chars = (request.logChars ?? 0) + line.length;
  if (lines.length === MAX_LOG_LINES - 1 || chars > MAX_LOG_CHARS) {
    lines.push(chars > MAX_LOG_CHARS ? CHARS_OVERFLOW : LINES_OVERFLOW);
    request.logOverflowed = true;
    return;
  }
  request.logChars = chars;
  lines.push(line);
}

/** The executions kept for the log stream, and their characters; older ones are dropped. */
const KEPT_EXECUTIONS = 10_000;
const KEPT_CHARS = 64 * MAX_LOG_CHARS;
/** How long a poll with nothing new waits before answering empty, as the backend's. */
const LONG_POLL_MS = 60_000;

/** The deployment's function log: printed as it happens, kept for the log stream. */
export class FunctionLog {
  #entries = [];
  #keptChars = 0;
  // From now, so a first poll's cursor makes the next one wait, even before any execution.
  #cursor = Date.now();
  #waiters = new Set();
  #executions = 0;

  /**
   * Records one execution: prints the `[LEVEL] text` lines it logged, then its
   * failure if it failed (`error`: the message without the request id), to
   * stdout, and keeps it for the stream. `kind` is "query", "mutation",
   * "action" or "httpAction"; `identifier` names the function ("tasks:list",
   * or "GET /path" for an HTTP action); `startedMs` is when it began.
   */
  record(kind, identifier, logLines, error, startedMs) {
    print(kind, identifier, logLines, error);
    const now = Date.now();
    // Cursors are strictly increasing, so two executions in one millisecond are both streamed.
    this.#cursor = Math.max(now, this.#cursor + 0.001);
    const executionId = (++this.#executions).toString(16).padStart(16, "0");
    const chars = logLines.reduce((sum, line) => sum + line.length, error?.length ?? 0);
    this.#keptChars += chars;
    this.#entries.push({
      cursor: this.#cursor,
      chars,
      json: {
        kind: "Completion",
        udfType: UDF_TYPES[kind],
        componentPath: null,
        identifier,
        logLines,
        timestamp: now / 1000,
        cachedResult: false,
        executionTime: (now - startedMs) / 1000,
        success: null,
        error,
        requestId: executionId,
        executionId,
        usageStats: ZERO_USAGE,
        occInfo: null,
        executionTimestamp: startedMs / 1000,
        identityType: "unknown",
        environment: "isolate",
      },
    });
    while (this.#entries.length > KEPT_EXECUTIONS || this.#keptChars > KEPT_CHARS) {
      this.#keptChars -= this.#entries.shift().chars;
    }
    for (const wake of this.#waiters) wake();
  }

  /**
   * `{entries, newCursor}`: the executions after `cursor` (ms). With none yet
   * it waits for one, up to LONG_POLL_MS, except for cursor 0, which asks for
   * the history and answers at once with a cursor of now.
   */
  async since(cursor) {
    if (cursor !== 0 && !(this.#cursor > cursor)) await this.#next();
    const entries = this.#entries.filter((entry) => entry.cursor > cursor);
    return {
      entries: entries.map((entry) => entry.json),
      newCursor: entries.length > 0 ? entries.at(-1).cursor : Math.max(cursor, this.#cursor),
    };
  }

  #next() {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, LONG_POLL_MS);
      timer.unref();
      this.#waiters.add(wake);
    });
  }
}

function print(kind, identifier, logLines, error) {
  if (logLines.length === 0 && error === null) return;
  const prefix = `[CONVEX ${KIND_LETTERS[kind] ?? "?"}(${identifier})]`;
  const out = logLines.map((line) => `${prefix} ${line}\n`);
  if (error !== null) out.push(`${prefix} ${error}\n`);
  process.stdout.write(out.join(""));
}
