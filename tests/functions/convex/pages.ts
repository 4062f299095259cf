import { paginationOptsValidator, queryGeneric as query } from "convex/server";

/** Notes, newest first, a page at a time: a new note lands at the top of page 1. */
export const notes = query({
  args: { paginationOpts: paginationOptsValidator },
  handler: async (ctx, { paginationOpts }) => {
    const result = await ctx.db.query("notes").order("desc").paginate(paginationOpts);
    return { ...result, page: result.page.map((note) => note.text) };
  },
});
