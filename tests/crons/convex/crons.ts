import { cronJobs, makeFunctionReference } from "convex/server";

const tick = makeFunctionReference<"mutation">("ticks:tick");

const crons = cronJobs();
crons.interval("every second", { seconds: 1 }, tick, { label: "interval" });
crons.daily("once a day", { hourUTC: 3, minuteUTC: 30 }, tick, { label: "daily" });
crons.cron("every minute", "* * * * *", tick, { label: "cron" });
export default crons;
