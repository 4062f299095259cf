import { internalMutationGeneric as internalMutation, queryGeneric as query } from "convex/server";
import { v } from "convex/values";

export const tick = internalMutation({
  args: { label: v.string() },
  handler: async (ctx, { label }) => {
    console.log("tick", label);
    await ctx.db.insert("ticks", { label });
  },
});

export const count = query({
  args: { label: v.string() },
  handler: async (ctx, { label }) =>
    (await ctx.db.query("ticks").collect()).filter((row) => row.label === label).length,
});
