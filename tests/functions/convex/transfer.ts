import { mutationGeneric as mutation, queryGeneric as query } from "convex/server";
import { v } from "convex/values";

/** Inserts `doc` into any table outside the schema; returns its id. */
export const insert = mutation({
  args: { table: v.string(), doc: v.any() },
  handler: async (ctx, { table, doc }) => await ctx.db.insert(table as "notes", doc),
});

/** Every document of `table`, system fields included, oldest first. */
export const list = query({
  args: { table: v.string() },
  handler: async (ctx, { table }) => await ctx.db.query(table as "notes").collect(),
});
