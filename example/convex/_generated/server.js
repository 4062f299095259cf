/* eslint-disable */
/**
 * Hand-written stand-in for the file `npx convex dev` generates: the same
 * builders, without types specialised to this app's schema. A real
 * `npx convex dev` or `npx convex codegen` overwrites it.
 */
export {
  actionGeneric as action,
  httpActionGeneric as httpAction,
  internalActionGeneric as internalAction,
  internalMutationGeneric as internalMutation,
  internalQueryGeneric as internalQuery,
  mutationGeneric as mutation,
  queryGeneric as query,
} from "convex/server";
