// Functions that fail in each way a client must tell apart.
import { mutationGeneric as mutation, queryGeneric as query } from "convex/server";
import { ConvexError, v } from "convex/values";

export const convexError = query({
  args: {},
  handler: async () => {
    throw new ConvexError({ code: "BOOM", count: 2n, detail: ["a", 1.5] });
  },
});

export const convexErrorMutation = mutation({
  args: {},
  handler: async () => {
    throw new ConvexError("nope");
  },
});

export const plainError = query({
  args: {},
  handler: async () => {
    throw new Error("boom");
  },
});

/** Writes, then throws: the write must never become visible. */
export const writeThenThrow = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => {
    await ctx.db.insert("notes", { text });
    throw new Error("failed after writing");
  },
});
