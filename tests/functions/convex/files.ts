import { actionGeneric as action, mutationGeneric as mutation, queryGeneric as query } from "convex/server";
import { v } from "convex/values";

export const generateUploadUrl = mutation({
  args: {},
  handler: async (ctx) => await ctx.storage.generateUploadUrl(),
});

export const url = query({
  args: { id: v.id("_storage") },
  handler: async (ctx, { id }) => await ctx.storage.getUrl(id),
});

export const metadata = query({
  args: { id: v.id("_storage") },
  handler: async (ctx, { id }) => await ctx.db.system.get(id),
});

export const all = query({
  args: {},
  handler: async (ctx) => await ctx.db.system.query("_storage").collect(),
});

export const storeText = action({
  args: { text: v.string(), type: v.string() },
  handler: async (ctx, { text, type }) => await ctx.storage.store(new Blob([text], { type })),
});

export const readText = action({
  args: { id: v.id("_storage") },
  handler: async (ctx, { id }) => {
    const blob = await ctx.storage.get(id);
    return blob === null ? null : { text: await blob.text(), type: blob.type };
  },
});

export const getMetadata = action({
  args: { id: v.id("_storage") },
  handler: async (ctx, { id }) => await ctx.storage.getMetadata(id),
});

export const remove = action({
  args: { id: v.id("_storage") },
  handler: async (ctx, { id }) => await ctx.storage.delete(id),
});
