// Cron jobs: the default export of `convex/crons.ts` (`cronJobs()`), run on
// schedule while the deployment runs, as the backend runs them: times in UTC,
// each run a call of its function like any other (logs and errors printed).

import { clearTimeout, setTimeout } from "node:timers";
import { CronExpressionParser } from "cron-parser";
import { jsonToConvex } from "convex/values";
import { parseFunctionPath } from "./paths.mjs";

const DAYS_OF_WEEK = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const MAX_DELAY_MS = 2 ** 31 - 1;

/** The cron expression (UTC) of a schedule other than an interval. */
export function cronExpression(schedule) {
  const minute = schedule.minuteUTC ?? 0;
  switch (schedule.type) {
    case "cron":
      return schedule.cron;
    case "hourly":
      return `${minute} * * * *`;
    case "daily":
      return `${minute} ${schedule.hourUTC} * * *`;
    case "weekly":
      return `${minute} ${schedule.hourUTC} * * ${DAYS_OF_WEEK.indexOf(schedule.dayOfWeek)}`;
    case "monthly":
      return `${minute} ${schedule.hourUTC} ${schedule.day} * *`;
    default:
      throw new Error(`Unknown cron schedule type ${JSON.stringify(schedule.type)}`);
  }
}

/** When a job on `schedule` runs next after `now` (ms). */
export function nextRun(schedule, now) {
  if (schedule.type === "interval") {
    const seconds = schedule.seconds ?? (schedule.minutes ?? 0) * 60 + (schedule.hours ?? 0) * 3600;
    return now + seconds * 1000;
  }
  return CronExpressionParser.parse(cronExpression(schedule), { tz: "UTC", currentDate: new Date(now) }).next().getTime();
}

export class CronRunner {
  /** `runtime` gives `run(call)` and `rootScope`, as for the scheduler. */
  constructor(runtime) {
    this.runtime = runtime;
    this.timers = new Map();
  }

  /** Runs the jobs of `crons` (the default export of crons.ts, or undefined) from now on, replacing any before. */
  update(crons) {
    const now = Date.now();
    // Every schedule is checked before any timer changes: a bad one fails the build, as a push would.
    // As on the backend, an interval job first runs at once, the others at their next time.
    const planned = Object.entries(crons?.isCrons ? crons.crons : {}).map(([identifier, job]) => {
      const next = nextRun(job.schedule, now);
      return [identifier, job, job.schedule.type === "interval" ? now : next];
    });
    this.stop();
    for (const [identifier, job, at] of planned) this.#arm(identifier, job, at);
  }

  stop() {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  #arm(identifier, job, at) {
    const delay = Math.max(0, at - Date.now());
    const timer = this.runtime.rootScope.runInAsyncScope(() => setTimeout(async () => {
      if (delay > MAX_DELAY_MS) {
        this.#arm(identifier, job, at);
        return;
      }
      await this.runtime.run({
        fn: parseFunctionPath(job.name),
        args: jsonToConvex(job.args[0]),
        auth: { identity: null, admin: true },
        kind: "any",
      });
      // Armed after the run, as on the backend: one run of a job at a time.
      if (this.timers.get(identifier) === timer) this.#arm(identifier, job, nextRun(job.schedule, Date.now()));
    }, Math.min(delay, MAX_DELAY_MS)));
    this.timers.set(identifier, timer);
  }
}
