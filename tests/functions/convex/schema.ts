import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  counters: defineTable({ name: v.string(), value: v.number() }).index("by_name", ["name"]),
  notes: defineTable({ text: v.string() }),
  contacts: defineTable({ name: v.string(), email: v.optional(v.string()), age: v.optional(v.float64()) }),
  articles: defineTable({ body: v.string(), author: v.string(), embedding: v.array(v.float64()) })
    .searchIndex("search_body", { searchField: "body", filterFields: ["author"] })
    .vectorIndex("by_embedding", { vectorField: "embedding", dimensions: 3 }),
});
