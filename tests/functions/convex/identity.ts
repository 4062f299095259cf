import { queryGeneric as query } from "convex/server";

export const whoami = query({
  args: {},
  handler: async (ctx) => await ctx.auth.getUserIdentity(),
});
