import { actionGeneric as action, mutationGeneric as mutation, queryGeneric as query } from "convex/server";
import { v } from "convex/values";

export const noisy = query({
  args: {},
  handler: async () => {
    console.log("hi", 1);
    console.info("info line");
    console.warn("warn line");
    console.error("error line", { a: 1 });
    return null;
  },
});

export const failingMutation = mutation({
  args: {},
  handler: async () => {
    console.log("about to fail");
    throw new Error("mutation failed");
  },
});

export const chattyAction = action({
  args: {},
  handler: async () => {
    console.debug("debug from an action");
    return null;
  },
});

export const flood = query({
  args: { lines: v.number(), length: v.number() },
  handler: async (_ctx, { lines, length }) => {
    for (let n = 0; n < lines; n++) console.log("x".repeat(length));
    return null;
  },
});
