import { ConvexError, v } from "convex/values";
import { paginationOptsValidator } from "convex/server";
import { mutation, query } from "./_generated/server";

const MAX_TEXT_LENGTH = 200;
const MAX_SEED = 500;

/** The history, newest first, a page at a time: a new entry lands at the top of page 1. */
export const list = query({
  args: { paginationOpts: paginationOptsValidator },
  handler: async (ctx, { paginationOpts }) => {
    return await ctx.db.query("history").order("desc").paginate(paginationOpts);
  },
});

export const add = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => {
    const trimmed = text.trim();
    if (trimmed === "") {
      throw new ConvexError("Entry text is required");
    }
    if (trimmed.length > MAX_TEXT_LENGTH) {
      throw new ConvexError(`Entry text is limited to ${MAX_TEXT_LENGTH} characters`);
    }
    return await ctx.db.insert("history", { text: trimmed });
  },
});

/** Adds `count` numbered entries, oldest first, so the history has something to page through. */
export const seed = mutation({
  args: { count: v.number() },
  handler: async (ctx, { count }) => {
    if (!Number.isInteger(count) || count < 1 || count > MAX_SEED) {
      throw new ConvexError(`count must be a whole number from 1 to ${MAX_SEED}`);
    }
    const start = (await ctx.db.query("history").collect()).length;
    for (let i = 1; i <= count; i++) {
      await ctx.db.insert("history", { text: `Entry ${start + i}` });
    }
  },
});

export const remove = mutation({
  args: { id: v.id("history") },
  handler: async (ctx, { id }) => {
    await ctx.db.delete(id);
  },
});
