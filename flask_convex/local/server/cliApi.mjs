// The reserved `_system/cli/*` queries the convex CLI subscribes to with an
// admin key (`npx convex data`, `npx convex env list/get`, the function list
// `npx convex run` prints for a wrong name, the states `npx convex import` and
// `export` wait on), answered from a snapshot of the deployment's documents,
// its environment variables, its modules and its imports and exports.

import { tableOfId } from "./validation.mjs";

const TYPES = [["isQuery", "Query"], ["isMutation", "Mutation"], ["isAction", "Action"]];

/** An environment variable name or value the backend would refuse. */
export class EnvVarError extends Error {}

const ENV_NAME = /^[a-zA-Z][a-zA-Z0-9_]*$/;
const MAX_ENV_NAME = 40;
const MAX_ENV_VALUE_BYTES = 8192;

/**
 * The system query at `fn` (a parsed path), or undefined. A query is
 * `({documents, env, modules, schema, transfers}, args) => value`.
 */
export function systemQuery(fn) {
  return SYSTEM_QUERIES[`${fn.module}:${fn.name}`];
}

/** Throws EnvVarError unless every `{name, value}` change could be set on the backend. */
export function checkEnvChanges(changes) {
  if (!Array.isArray(changes)) throw new EnvVarError("Expected `changes` to be an array of {name, value}");
  for (const change of changes) {
    const { name, value } = change ?? {};
    if (typeof name !== "string" || !ENV_NAME.test(name) || name.length > MAX_ENV_NAME) {
      throw new EnvVarError(
        `Invalid environment variable name ${JSON.stringify(name)}: it must start with a letter, `
          + `contain only letters, digits and underscores, and be at most ${MAX_ENV_NAME} characters`,
      );
    }
    if (value !== null && typeof value !== "string") {
      throw new EnvVarError(`The value of ${name} must be a string, or null to remove it`);
    }
    if (value !== null && Buffer.byteLength(value) > MAX_ENV_VALUE_BYTES) {
      throw new EnvVarError(`The value of ${name} is longer than ${MAX_ENV_VALUE_BYTES} bytes`);
    }
  }
}

const SYSTEM_QUERIES = {
  "_system/cli/queryEnvironmentVariables:default": ({ env }) =>
    Object.keys(env).sort().map((name) => ({ name, value: env[name] })),
  "_system/cli/queryEnvironmentVariables:get": ({ env }, { name }) =>
    Object.hasOwn(env, name) ? { name, value: env[name] } : null,
  "_system/cli/tables:default": ({ documents, schema }, { paginationOpts }) => {
    const names = new Set(schema?.tables.keys() ?? []);
    for (const id of Object.keys(documents)) names.add(tableOfId(id));
    return page([...names].sort().map((name) => ({ name })), paginationOpts);
  },
  "_system/cli/tableData:default": ({ documents }, { table, order, paginationOpts }) => {
    const rows = Object.entries(documents)
      .filter(([id]) => tableOfId(id) === table)
      .map(([, doc]) => doc)
      .sort((a, b) => a._creationTime - b._creationTime);
    return page(order === "asc" ? rows : rows.reverse(), paginationOpts);
  },
  "_system/cli/queryImport:default": ({ transfers }, { importId }) => transfers.importRecord(importId),
  "_system/cli/queryImport:list": ({ transfers }) => transfers.importRecords(),
  "_system/cli/exports:getLatest": ({ transfers }) => transfers.latestExport(),
  "_system/cli/modules:apiSpec": ({ modules }) => {
    const spec = [];
    for (const [modulePath, module] of modules) {
      for (const [name, value] of Object.entries(module ?? {})) {
        const type = TYPES.find(([flag]) => value?.[flag])?.[1];
        if (type === undefined) continue;
        spec.push({
          identifier: `${modulePath}.js:${name}`,
          functionType: type,
          visibility: { kind: value.isInternal ? "internal" : "public" },
        });
      }
    }
    return spec;
  },
};

/** One page of `rows`; the cursor is the offset of the next row, as a string. */
function page(rows, { cursor, numItems }) {
  const start = cursor === null || cursor === undefined ? 0 : Number.parseInt(cursor, 10) || 0;
  const end = start + Math.max(1, numItems);
  return { page: rows.slice(start, end), isDone: end >= rows.length, continueCursor: String(end) };
}
