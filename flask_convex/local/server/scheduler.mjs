// Scheduled functions that outlive the process. convex-test keeps a job only
// as a timer; here a job is its `_scheduled_functions` document (persisted with
// every other document), and timers are re-armed from those documents when the
// deployment starts, so a job pending at shutdown runs after a restart, late if
// its time has passed. Jobs run through the runtime like any call, so their
// logs and errors are printed like any function's.

// node:timers, not the globals: convex-test forbids those inside queries and mutations.
import { clearTimeout, setTimeout } from "node:timers";
import { jsonToConvex } from "convex/values";
import { parseFunctionPath } from "./paths.mjs";

const TABLE = "_scheduled_functions";
/** setTimeout's longest delay; later jobs wait in steps. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class Scheduler {
  /**
   * `runtime` gives `db`, `transaction(fn)` (runs `fn` as one committed
   * mutation), `run(call)`, `functionAt(fn)` and `rootScope` (timers must not
   * run in the context of the request that scheduled them).
   */
  constructor(runtime) {
    this.runtime = runtime;
    this.timers = new Map();
  }

  /** The syscalls (see syscalls.mjs) that schedule and cancel jobs. */
  asyncHandlers() {
    return {
      "1.0/schedule": (args) => this.schedule(args),
      "1.0/actions/schedule": (args) => this.runtime.transaction(() => this.schedule(args)),
      "1.0/cancel_job": ({ id }) => this.cancel(id),
      "1.0/actions/cancel_job": ({ id }) => this.runtime.transaction(() => this.cancel(id)),
    };
  }

  /** Re-arms every job left pending, and settles those a stop interrupted. */
  async resume() {
    const { db } = this.runtime;
    for (const [id, job] of Object.entries(db._documents)) {
      if (!id.endsWith(TABLE)) continue;
      if (job.state.kind === "pending") this.arm(id, job.scheduledTime);
      else if (job.state.kind === "inProgress") await this.#interrupted(id, job);
    }
  }

  /** Stops every timer (the jobs stay pending in the data). */
  stop() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  schedule({ name, args, ts }) {
    if (typeof name !== "string") {
      throw new Error("The local deployment schedules functions by reference only, not by function handle");
    }
    const { db } = this.runtime;
    const scheduledTime = ts * 1000;
    const id = db.insert(TABLE, { args: [jsonToConvex(args)], name, scheduledTime, state: { kind: "pending" } });
    // Armed now: if the scheduling mutation rolls back, the timer finds no pending job.
    this.arm(id, scheduledTime);
    return id;
  }

  cancel(id) {
    const { db } = this.runtime;
    const job = db.get(TABLE, id);
    if (job !== null && (job.state.kind === "pending" || job.state.kind === "inProgress")) {
      db.patch(TABLE, id, { state: { kind: "canceled" }, completedTime: Date.now() });
    }
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    return {};
  }

  arm(id, at) {
    clearTimeout(this.timers.get(id));
    const delay = Math.max(0, at - Date.now());
    const timer = this.runtime.rootScope.runInAsyncScope(() => setTimeout(
      () => (delay > MAX_DELAY_MS ? this.arm(id, at) : this.fire(id)),
      Math.min(delay, MAX_DELAY_MS),
    ));
    this.timers.set(id, timer);
  }

  async fire(id) {
    this.timers.delete(id);
    const { db } = this.runtime;
    const job = await this.runtime.transaction(() => {
      const found = db.get(TABLE, id);
      if (found?.state.kind !== "pending") return null;
      db.patch(TABLE, id, { state: { kind: "inProgress" } });
      return found;
    });
    if (job === null) return;
    const outcome = await this.runtime.run({
      fn: parseFunctionPath(job.name),
      args: job.args[0],
      auth: { identity: null, admin: true },
      kind: "any",
    });
    await this.runtime.transaction(() => {
      // A job canceled while it ran stays canceled.
      if (db.get(TABLE, id)?.state.kind !== "inProgress") return;
      const state = outcome.ok ? { kind: "success" } : { kind: "failed", error: outcome.message };
      db.patch(TABLE, id, { state, completedTime: Date.now() });
    });
  }

  /** A job the last stop interrupted: a query or mutation never committed, so it runs again; an action may have had effects, so it failed. */
  async #interrupted(id, job) {
    const { db } = this.runtime;
    const isAction = this.runtime.functionAt(parseFunctionPath(job.name))?.isAction === true;
    await this.runtime.transaction(() => {
      if (isAction) {
        db.patch(TABLE, id, {
          state: { kind: "failed", error: "Transient error while executing action: the deployment stopped" },
          completedTime: Date.now(),
        });
      } else {
        db.patch(TABLE, id, { state: { kind: "pending" } });
      }
    });
    if (!isAction) this.arm(id, job.scheduledTime);
  }
}
