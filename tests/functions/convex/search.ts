import { actionGeneric as action, mutationGeneric as mutation, queryGeneric as query } from "convex/server";
import { v } from "convex/values";

export const add = mutation({
  args: { body: v.string(), author: v.string(), embedding: v.array(v.float64()) },
  handler: async (ctx, article) => await ctx.db.insert("articles", article),
});

/** Bodies of the articles matching `text`, best first. */
export const find = query({
  args: { text: v.string(), author: v.optional(v.string()) },
  handler: async (ctx, { text, author }) => {
    const found = await ctx.db
      .query("articles")
      .withSearchIndex("search_body", (q) => (author === undefined ? q.search("body", text) : q.search("body", text).eq("author", author)))
      .collect();
    return found.map((article) => article.body);
  },
});

export const similar = action({
  args: { vector: v.array(v.float64()) },
  handler: async (ctx, { vector }) =>
    (await ctx.vectorSearch("articles", "by_embedding", { vector, limit: 2 })).map((r) => r._id),
});
