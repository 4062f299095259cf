/* eslint-disable */
/**
 * Hand-written stand-in for the file `npx convex dev` generates; a real
 * `npx convex dev` or `npx convex codegen` overwrites it.
 */
import type { AnyApi } from "convex/server";

export declare const api: AnyApi;
export declare const internal: AnyApi;
