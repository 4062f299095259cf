// `.paginate()` as the real backend runs it, on top of convex-test's page scan.
//
// A subscribed paginated query is re-run with the end cursor of its first run
// (the query journal the sync protocol carries), so a page keeps exactly the
// documents between its two cursors as rows are inserted or deleted: the
// official clients' gapless pagination depends on it. A page asked to end at a
// cursor reports that cursor as its `continueCursor` even when the document it
// pointed at is gone, and a cursor that is not one this deployment handed out
// is refused like the backend refuses it.

import { jsonToConvex } from "convex/values";

/** convex-test's cursor for "past the last document". */
const END_CURSOR = "_end_cursor";
/**
 * What the backend says of a cursor or journal it cannot decrypt
 * (`cursor_parse_error` in convex-backend's keybroker), under its error code,
 * which the official clients look for to restart a paginated query.
 */
const CURSOR_PARSE_ERROR = "InvalidCursor: Failed to parse cursor";

/** A cursor or query journal this deployment did not produce. */
export class InvalidCursorError extends Error {}

/**
 * The query journal a client sent (JSON text or null) as the end cursor it
 * pins; undefined when there is none.
 */
export function parseJournal(journal) {
  if (journal === null || journal === undefined) return undefined;
  let parsed;
  try {
    parsed = JSON.parse(journal);
  } catch {
    parsed = null;
  }
  const endCursor = parsed?.endCursor;
  if (typeof endCursor !== "string" || !isCursor(endCursor)) {
    throw new InvalidCursorError(CURSOR_PARSE_ERROR);
  }
  return endCursor;
}

/** The query journal (JSON text, or null) recording the end of a run's page. */
export function serializeJournal(endCursor) {
  return endCursor === undefined ? null : JSON.stringify({ endCursor });
}

/**
 * Runs convex-test's `scan(options)` for one `.paginate()` call. `journal` is
 * the request's `{endCursor}` (the pinned end of a re-run, or undefined); the
 * page's end is written back to `journal.next`.
 */
export function paginate(scan, options, journal) {
  checkCursor(options.cursor);
  checkCursor(options.endCursor);
  const endCursor = options.endCursor ?? journal?.endCursor ?? null;
  const result = scan({ ...options, endCursor });
  if (endCursor !== null && result.pageStatus !== "SplitRequired") {
    // The page ends where it was told to, found or not (convex-test reports
    // the end of the table when the document at `endCursor` was deleted).
    result.continueCursor = endCursor;
    result.isDone = endCursor === END_CURSOR;
  }
  if (journal !== undefined) journal.next = result.continueCursor;
  return result;
}

function checkCursor(cursor) {
  if (cursor !== null && cursor !== undefined && !isCursor(cursor)) throw new InvalidCursorError(CURSOR_PARSE_ERROR);
}

/** Whether `cursor` has convex-test's form: a JSON array of JSON-encoded Convex values (null for undefined). */
function isCursor(cursor) {
  if (cursor === END_CURSOR) return true;
  if (typeof cursor !== "string") return false;
  try {
    const keys = JSON.parse(cursor);
    if (!Array.isArray(keys) || keys.length === 0) return false;
    for (const key of keys) {
      if (key === null) continue;
      if (typeof key !== "string") return false;
      jsonToConvex(JSON.parse(key));
    }
    return true;
  } catch {
    return false;
  }
}
