import {
  actionGeneric as action,
  internalQueryGeneric as internalQuery,
  mutationGeneric as mutation,
  queryGeneric as query,
} from "convex/server";
import { makeFunctionReference } from "convex/server";
import { v } from "convex/values";

export const get = query({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    const row = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).unique();
    return row?.value ?? 0;
  },
});

export const increment = mutation({
  args: { name: v.string(), by: v.optional(v.number()) },
  handler: async (ctx, { name, by }) => {
    const row = await ctx.db.query("counters").withIndex("by_name", (q) => q.eq("name", name)).unique();
    const value = (row?.value ?? 0) + (by ?? 1);
    if (row === null) await ctx.db.insert("counters", { name, value });
    else await ctx.db.patch(row._id, { value });
    return value;
  },
});

export const addNote = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => await ctx.db.insert("notes", { text }),
});

export const removeNote = mutation({
  args: { id: v.id("notes") },
  handler: async (ctx, { id }) => await ctx.db.delete(id),
});

export const notes = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("notes").collect()).map((note) => note.text),
});

export const secret = internalQuery({
  args: {},
  handler: async () => "internal only",
});

/** Sleeps, then increments: shows actions run outside transactions and can write. */
export const slowIncrement = action({
  args: { name: v.string(), ms: v.number() },
  handler: async (ctx, { name, ms }): Promise<number> => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return await ctx.runMutation(makeFunctionReference<"mutation">("counter:increment"), { name });
  },
});

export const env = query({
  args: { name: v.string() },
  handler: async (_ctx, { name }) => process.env[name] ?? null,
});
