import { ConvexError, v } from "convex/values";
import { mutation, query } from "./_generated/server";

export const list = query({
  args: {},
  handler: async (ctx) => await ctx.db.query("tasks").collect(),
});

export const create = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => {
    if (text.trim() === "") {
      throw new ConvexError("Write something first");
    }
    return await ctx.db.insert("tasks", { text: text.trim() });
  },
});
