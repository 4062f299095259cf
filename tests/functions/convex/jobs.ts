import {
  actionGeneric as action,
  internalMutationGeneric as internalMutation,
  makeFunctionReference,
  mutationGeneric as mutation,
  queryGeneric as query,
} from "convex/server";
import { v } from "convex/values";

const recordRef = makeFunctionReference<"mutation">("jobs:record");
const explodeRef = makeFunctionReference<"mutation">("jobs:explode");

export const record = internalMutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => {
    console.log("recording", text);
    await ctx.db.insert("notes", { text });
  },
});

export const explode = internalMutation({
  args: {},
  handler: async () => {
    throw new Error("job exploded");
  },
});

export const later = mutation({
  args: { text: v.string(), ms: v.number() },
  handler: async (ctx, { text, ms }) => await ctx.scheduler.runAfter(ms, recordRef, { text }),
});

export const at = mutation({
  args: { text: v.string(), when: v.number() },
  handler: async (ctx, { text, when }) => await ctx.scheduler.runAt(when, recordRef, { text }),
});

export const failing = mutation({
  args: {},
  handler: async (ctx) => await ctx.scheduler.runAfter(0, explodeRef, {}),
});

export const fromAction = action({
  args: { text: v.string() },
  handler: async (ctx, { text }) => await ctx.scheduler.runAfter(0, recordRef, { text }),
});

export const cancel = mutation({
  args: { id: v.id("_scheduled_functions") },
  handler: async (ctx, { id }) => await ctx.scheduler.cancel(id),
});

export const job = query({
  args: { id: v.id("_scheduled_functions") },
  handler: async (ctx, { id }) => await ctx.db.system.get(id),
});
