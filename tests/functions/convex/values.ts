// Round trips of every Convex value type that JSON cannot carry plainly.
import { queryGeneric as query } from "convex/server";
import { v } from "convex/values";

export const echo = query({
  args: { value: v.any() },
  handler: async (_ctx, { value }) => value,
});

export const sumInt64 = query({
  args: { values: v.array(v.int64()) },
  handler: async (_ctx, { values }) => values.reduce((a, b) => a + b, 0n),
});

export const echoBytes = query({
  args: { data: v.bytes() },
  handler: async (_ctx, { data }) => ({ data, length: data.byteLength }),
});

export const specialFloats = query({
  args: {},
  handler: async () => ({ nan: NaN, inf: Infinity, negInf: -Infinity, negZero: -0, five: 5, half: 0.5 }),
});

export default query({
  args: {},
  handler: async () => "default export",
});
