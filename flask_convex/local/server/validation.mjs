// Argument validation with the real backend's wording. convex-test checks
// arguments too, but words its errors its own way ("Validator error: ..."); we
// check first, against the validator JSON a registered function exports, so a
// client sees what a deployed function would answer:
//
//   ArgumentValidationError: Value does not match validator.
//   Path: .count
//   Value: "three"
//   Validator: v.float64()

/** Arguments a function's validator refuses; the message is the backend's. */
export class ArgumentValidationError extends Error {}

/** Throws ArgumentValidationError unless `args` match `func`'s exported args validator. */
export function checkArgs(func, args) {
  const validator = JSON.parse(func.exportArgs?.() ?? '{"type":"any"}');
  const problem = check(validator, args, null);
  if (problem !== null) throw new ArgumentValidationError(`ArgumentValidationError: ${problem}`);
}

/** A schema that documents already stored violate. */
export class SchemaValidationError extends Error {}

/**
 * Throws SchemaValidationError naming the first document of `documents` (id
 * -> document) that `schema` (a defineSchema result, or undefined) refuses.
 */
export function checkSchema(schema, documents) {
  if (schema === undefined) return;
  const exported = JSON.parse(schema.export());
  if (!exported.schemaValidation) return;
  const types = new Map(exported.tables.map((table) => [table.tableName, table.documentType]));
  for (const [id, document] of Object.entries(documents)) {
    const table = tableOfId(id);
    const validator = types.get(table);
    if (validator === undefined) continue;
    const fields = Object.fromEntries(Object.entries(document).filter(([name]) => !name.startsWith("_")));
    const problem = check(validator, fields, null);
    if (problem !== null) {
      throw new SchemaValidationError(
        `Schema validation failed.\nDocument with ID "${id}" in table "${table}" does not match the schema: ${problem}`,
      );
    }
  }
}

/** The backend's description of why `value` fails `validator` at `path`, or null. */
function check(validator, value, path) {
  const noMatch = () => `Value does not match validator.\n${context(path)}\nValue: ${show(value)}\nValidator: ${describe(validator)}`;
  switch (validator.type) {
    case "any":
      return null;
    case "null":
      return value === null ? null : noMatch();
    case "number":
      return typeof value === "number" ? null : noMatch();
    case "bigint":
      return typeof value === "bigint" ? null : noMatch();
    case "boolean":
      return typeof value === "boolean" ? null : noMatch();
    case "string":
      return typeof value === "string" ? null : noMatch();
    case "bytes":
      return value instanceof ArrayBuffer ? null : noMatch();
    case "literal":
      return value === validator.value ? null
        : `\`${show(value)}\` does not match literal validator \`${describe(validator)}\`.${context(path)}`;
    case "id": {
      const table = typeof value === "string" ? tableOfId(value) : null;
      if (table === null) return noMatch();
      if (table === validator.tableName) return null;
      return `Found ID "${value}" from table \`${table}\`, which does not match the table name in validator `
        + `\`${describe(validator)}\`.${context(path)}`;
    }
    case "array":
      if (!Array.isArray(value)) return noMatch();
      for (const [index, item] of value.entries()) {
        const problem = check(validator.value, item, `${path ?? ""}[${index}]`);
        if (problem !== null) return problem;
      }
      return null;
    case "record":
      if (!isPlainObject(value)) return noMatch();
      for (const [key, item] of Object.entries(value)) {
        const problem = check(validator.keys, key, `${path ?? ""}.keys()`)
          ?? check(validator.values.fieldType, item, `${path ?? ""}.values()`);
        if (problem !== null) return problem;
      }
      return null;
    case "object":
      return checkObject(validator, value, path, noMatch);
    case "union": {
      if (validator.value.length === 1) return check(validator.value[0], value, path);
      return validator.value.some((option) => check(option, value, path) === null) ? null : noMatch();
    }
    default:
      return null;
  }
}

function checkObject(validator, value, path, noMatch) {
  if (!isPlainObject(value)) return noMatch();
  for (const [field, { fieldType, optional }] of Object.entries(validator.value)) {
    if (value[field] === undefined) {
      if (optional) continue;
      return `Object is missing the required field \`${field}\`. Consider wrapping the field validator in `
        + `\`v.optional(...)\` if this is expected.\n${context(path)}\nObject: ${show(value)}\nValidator: ${describe(validator)}`;
    }
    const problem = check(fieldType, value[field], `${path ?? ""}.${field}`);
    if (problem !== null) return problem;
  }
  for (const field of Object.keys(value)) {
    if (!(field in validator.value) && value[field] !== undefined) {
      return `Object contains extra field \`${field}\` that is not in the validator.\n${context(path)}\n`
        + `Object: ${show(value)}\nValidator: ${describe(validator)}`;
    }
  }
  return null;
}

function context(path) {
  return path === null ? "" : `Path: ${path}`;
}

/** A validator as the backend prints it: `v.object({name: v.string()})`. */
function describe(validator) {
  switch (validator.type) {
    case "number":
      return "v.float64()";
    case "bigint":
      return "v.int64()";
    case "literal":
      return `v.literal(${typeof validator.value === "bigint" ? "<bigint>" : JSON.stringify(validator.value)})`;
    case "id":
      return `v.id("${validator.tableName}")`;
    case "array":
      return `v.array(${describe(validator.value)})`;
    case "record":
      return `v.record(${describe(validator.keys)}, ${describe(validator.values.fieldType)})`;
    case "union":
      return `v.union(${validator.value.map(describe).join(", ")})`;
    case "object": {
      // Fields in sorted order, as the backend keeps them.
      const fields = Object.entries(validator.value).sort(byKey).map(([name, { fieldType, optional }]) => {
        const inner = describe(fieldType);
        return `${name}: ${optional ? `v.optional(${inner})` : inner}`;
      });
      return `v.object({${fields.join(", ")}})`;
    }
    default:
      return `v.${validator.type}()`;
  }
}

/** A Convex value as the backend prints it in errors. */
function show(value) {
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value instanceof ArrayBuffer) return `b"${Buffer.from(value).toString("base64")}"`;
  if (Array.isArray(value)) return `[${value.map(show).join(", ")}]`;
  const fields = Object.entries(value).filter(([, v]) => v !== undefined).sort(byKey);
  return `{${fields.map(([k, v]) => `${k}: ${show(v)}`).join(", ")}}`;
}

function byKey([a], [b]) {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isPlainObject(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof ArrayBuffer) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === null || prototype === Object.prototype;
}

/** The table of a convex-test id (`<number><table>`), or null for a string that is none. */
export function tableOfId(id) {
  const match = id.match(/^[0-9]+/);
  return match === null || match[0].length === id.length ? null : id.slice(match[0].length);
}
