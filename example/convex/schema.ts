import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  tasks: defineTable({
    list: v.string(),
    text: v.string(),
    done: v.boolean(),
    // tokenIdentifier of the user who created the task; absent for anonymous tasks.
    owner: v.optional(v.string()),
  }).index("by_list_owner", ["list", "owner"]),
  // A shared history that the /history page lists 20 entries at a time.
  history: defineTable({ text: v.string() }),
});
