/* eslint-disable */
/**
 * Hand-written stand-in for the file `npx convex dev` generates; a real
 * `npx convex dev` or `npx convex codegen` overwrites it.
 */
import { anyApi } from "convex/server";

export const api = anyApi;
export const internal = anyApi;
