// Function path rules of the Convex backend (protocol 1.8): every spelling a
// client may send ("tasks", "tasks:default", "tasks.js:list", ...) resolves to
// one function, and anything else is rejected before any code runs.

const MODULE_COMPONENT = /^[A-Za-z0-9_.]{1,64}$/;
const HAS_ALPHANUMERIC = /[A-Za-z0-9]/;
const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
// `_system/` holds the backend's own functions (cliApi.mjs), run for admins only.
const RESERVED_DIRECTORIES = new Set(["_deps"]);

/** A path no function can have: the HTTP API answers 400 BadConvexFunctionIdentifier. */
export class InvalidPathError extends Error {}

/**
 * Parses a client-sent function path into `{module, name, display, canonical}`:
 * `module` without extension (how modules are loaded), `display` as clients
 * write it ("dir/file:fn"), `canonical` as the backend writes it ("dir/file.js:fn").
 */
export function parseFunctionPath(path) {
  if (typeof path !== "string") {
    throw new InvalidPathError(`Function path must be a string, got ${typeof path}`);
  }
  const colon = path.lastIndexOf(":");
  const name = colon === -1 ? "default" : path.slice(colon + 1);
  let module = colon === -1 ? path : path.slice(0, colon);
  if (!FUNCTION_NAME.test(name) || /^_+$/.test(name)) {
    throw new InvalidPathError(`Invalid function name "${name}" in "${path}"`);
  }
  const components = module.split("/");
  const last = components[components.length - 1];
  if (last.endsWith(".js")) {
    module = module.slice(0, -3);
    components[components.length - 1] = last.slice(0, -3);
  } else if (last.includes(".")) {
    throw new InvalidPathError(`Module path "${module}" must have no extension or ".js"`);
  }
  for (const component of components) {
    if (!MODULE_COMPONENT.test(component) || !HAS_ALPHANUMERIC.test(component)) {
      throw new InvalidPathError(`Invalid module path "${module}" in "${path}"`);
    }
  }
  if (RESERVED_DIRECTORIES.has(components[0])) {
    throw new InvalidPathError(`Module path "${module}" is reserved`);
  }
  return {
    module,
    name,
    display: `${module}:${name}`,
    canonical: `${module}.js:${name}`,
  };
}
