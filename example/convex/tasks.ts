import type { Auth } from "convex/server";
import { ConvexError, v } from "convex/values";
import { mutation, query, type MutationCtx } from "./_generated/server";
import type { Id } from "./_generated/dataModel";

const MAX_TEXT_LENGTH = 500;

/** The caller's tokenIdentifier, or undefined for anonymous callers. */
async function callerOf(ctx: { auth: Auth }): Promise<string | undefined> {
  const identity = await ctx.auth.getUserIdentity();
  return identity?.tokenIdentifier;
}

/** The tasks of one list that the caller may see: their own, or the owner-less ones when anonymous. */
export const list = query({
  args: { list: v.string() },
  handler: async (ctx, { list }) => {
    const owner = await callerOf(ctx);
    return await ctx.db
      .query("tasks")
      .withIndex("by_list_owner", (q) => q.eq("list", list).eq("owner", owner))
      .collect();
  },
});

export const create = mutation({
  args: { list: v.string(), text: v.string() },
  returns: v.id("tasks"),
  handler: async (ctx, { list, text }) => {
    const trimmed = text.trim();
    if (trimmed === "") {
      throw new ConvexError("Task text is required");
    }
    if (trimmed.length > MAX_TEXT_LENGTH) {
      throw new ConvexError(`Task text is limited to ${MAX_TEXT_LENGTH} characters`);
    }
    const owner = await callerOf(ctx);
    return await ctx.db.insert("tasks", { list, text: trimmed, done: false, owner });
  },
});

/** Loads a task the caller owns, refusing anyone else's the same way as a missing one. */
async function ownTask(ctx: MutationCtx, id: Id<"tasks">) {
  const task = await ctx.db.get(id);
  if (task === null || task.owner !== (await callerOf(ctx))) {
    throw new ConvexError("Not found");
  }
  return task;
}

export const toggle = mutation({
  args: { id: v.id("tasks") },
  handler: async (ctx, { id }) => {
    const task = await ownTask(ctx, id);
    await ctx.db.patch(id, { done: !task.done });
  },
});

export const remove = mutation({
  args: { id: v.id("tasks") },
  handler: async (ctx, { id }) => {
    await ownTask(ctx, id);
    await ctx.db.delete(id);
  },
});
