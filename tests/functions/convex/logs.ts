import { queryGeneric as query } from "convex/server";

export const noisy = query({
  args: {},
  handler: async () => {
    console.log("hi", 1);
    console.info("info line");
    console.warn("warn line");
    console.error("error line", { a: 1 });
    return null;
  },
});
