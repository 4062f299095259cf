// Offline codegen: writes `convex/_generated/` as `npx convex dev` does, with
// the template functions of the pinned `convex` CLI itself and the same
// prettier formatting, plus a typed Python module of the app's public
// functions. The CLI's `component_api` and `dataModel` templates import
// CLI-only packages (chalk, zod, ...) that npm ships bundled inside
// `cli.bundle.cjs`; they are bundled here with those packages stubbed out,
// since the template functions used never call them.

import fs from "node:fs";
import { builtinModules, createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

const requireConvex = createRequire(createRequire(import.meta.url).resolve("convex/package.json"));
const esbuild = requireConvex("esbuild");
const prettier = requireConvex("prettier");
const TEMPLATES = path.join(path.dirname(requireConvex.resolve("convex/package.json")), "dist/esm/cli/codegen_templates");
const { serverCodegen } = await import(pathToFileURL(path.join(TEMPLATES, "server.js")).href);

const STUB = `const stub = new Proxy(function () {}, {
  get: (_target, key) => (key === "__esModule" ? false : stub),
  apply: () => stub,
  construct: () => stub,
  getPrototypeOf: () => stub,
});
module.exports = stub;`;
const BUILTINS = new Set(builtinModules);

let templates = null;

/** The CLI's `componentApiJs`, `componentApiDTS`, `dynamicDataModelDTS`, `noSchemaDataModelDTS`. */
async function cliTemplates(scratchDir) {
  if (templates !== null) return templates;
  const stubCliPackages = {
    name: "stub-cli-packages",
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, ({ path: specifier }) =>
        BUILTINS.has(specifier.replace(/^node:/, "").split("/")[0])
          ? { external: true }
          : { path: specifier, namespace: "stub" });
      build.onLoad({ filter: /.*/, namespace: "stub" }, () => ({ contents: STUB, loader: "js" }));
    },
  };
  const result = await esbuild.build({
    stdin: {
      contents: 'export * from "./component_api.js"; export * from "./dataModel.js";',
      resolveDir: TEMPLATES,
      loader: "js",
    },
    bundle: true,
    write: false,
    platform: "node",
    format: "esm",
    plugins: [stubCliPackages],
    logLevel: "silent",
  });
  fs.mkdirSync(scratchDir, { recursive: true });
  const file = path.join(scratchDir, "codegen-templates.mjs");
  fs.writeFileSync(file, result.outputFiles[0].text);
  templates = await import(pathToFileURL(file).href);
  return templates;
}

/** The CLI's `Context`, as much of it as the templates use. */
const cliContext = {
  fs: {
    exists: (file) => fs.existsSync(file),
    listDir: (dir) => fs.readdirSync(dir, { withFileTypes: true }),
    stat: (file) => fs.statSync(file),
    readUtf8File: (file) => fs.readFileSync(file, "utf8"),
  },
  crash: async ({ printedMessage }) => {
    throw new Error(printedMessage);
  },
};

/**
 * Writes `_generated/{api,server}.{js,d.ts}` and `dataModel.d.ts` under
 * `functionsDir` with what `npx convex dev` writes for an app without
 * components; unchanged files are left alone. Returns the names written.
 */
export async function generateTypeScript(functionsDir, scratchDir) {
  const cli = await cliTemplates(scratchDir);
  const root = { isRoot: true, path: functionsDir, definitionPath: path.join(functionsDir, "convex.config.ts"), isRootWithoutConfig: true };
  const analysis = { analysis: { "": { definition: { childComponents: [], envVars: [] } } } };
  const hasSchema = ["schema.ts", "schema.js"].some((name) => fs.existsSync(path.join(functionsDir, name)));
  const server = serverCodegen({ useTypeScript: false, envVars: [] });
  // In the CLI's order: each file only imports files written before it.
  const files = [
    ["dataModel.d.ts", hasSchema ? cli.dynamicDataModelDTS() : cli.noSchemaDataModelDTS()],
    ["server.js", server.JS],
    ["server.d.ts", server.DTS],
    ["api.js", cli.componentApiJs()],
    ["api.d.ts", await cli.componentApiDTS(cliContext, analysis, root, root, new Map(), { staticApi: false, useComponentApiImports: false })],
  ];
  const written = [];
  for (const [name, contents] of files) {
    const formatted = await prettier.format(contents, { parser: "typescript", pluginSearchDirs: false });
    if (writeIfChanged(path.join(functionsDir, "_generated", name), formatted)) written.push(name);
  }
  return written;
}

/** Writes the typed Python module of a loaded build to `file`; returns whether it changed. */
export function writePythonModule(file, modules) {
  return writeIfChanged(file, pythonModule(modules));
}

function writeIfChanged(file, contents) {
  if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === contents) return false;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, contents);
  fs.renameSync(temporary, file);
  return true;
}

// ---------------------------------------------------------------- Python

const PYTHON_KEYWORDS = new Set(("False None True and as assert async await break class continue def del elif else except "
  + "finally for from global if import in is lambda nonlocal not or pass raise return try while with yield").split(" "));

/** `user_profiles` or `userProfiles` as `UserProfiles`. */
function pascal(name) {
  return name.split(/[^A-Za-z0-9]+/).filter(Boolean).map((part) => part[0].toUpperCase() + part.slice(1)).join("");
}

/** Python source of typed references to every public function of `modules`. */
export function pythonModule(modules) {
  const types = new PythonTypes();
  const schema = modules.get("schema")?.default;
  const tables = schema ? JSON.parse(schema.export()).tables : [];
  for (const table of tables) types.table(table.tableName);
  for (const table of tables) {
    const fields = { ...table.documentType.value };
    types.doc(table.tableName, {
      _id: { fieldType: { type: "id", tableName: table.tableName }, optional: false },
      _creationTime: { fieldType: { type: "number" }, optional: false },
      ...fields,
    });
  }
  const tree = {};
  for (const [modulePath, namespace] of [...modules].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    for (const [name, func] of Object.entries(namespace).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (!func?.isPublic || !(func.isQuery || func.isMutation || func.isAction)) continue;
      const typeName = pascal(`${modulePath} ${name}`);
      const args = JSON.parse(func.exportArgs());
      const returns = JSON.parse(func.exportReturns());
      const argsType = args.type !== "object" ? "Any" : Object.keys(args.value).length === 0 ? "NoArgs" : types.typedDict(`${typeName}Args`, args.value);
      const returnsType = returns === null ? "Any" : types.alias(`${typeName}Returns`, returns, `${typeName}Returns`);
      let branch = tree;
      for (const part of modulePath.split("/")) branch = branch[part] ??= {};
      const kind = func.isQuery ? "query" : func.isMutation ? "mutation" : "action";
      branch[name] = { path: name === "default" ? modulePath : `${modulePath}:${name}`, argsType, returnsType, kind };
    }
  }
  const classes = [];
  const emit = (className, branch, prefix) => {
    const lines = [`class ${className}:`, `    """${prefix.length ? `api.${prefix.join(".")}` : "The app's public Convex functions"}."""`, ""];
    for (const [key, entry] of Object.entries(branch)) {
      const attribute = PYTHON_KEYWORDS.has(key) ? `${key}_` : key;
      if (typeof entry.kind === "string") {
        lines.push(`    ${attribute}: Final[FunctionReference[${entry.argsType}, ${entry.returnsType}]] = FunctionReference(`);
        lines.push(`        (${[...prefix, key].map((part) => JSON.stringify(part)).join(", ")})`);
        lines.push("    )");
        lines.push(`    """The ${entry.kind} ${JSON.stringify(entry.path)}."""`);
      } else {
        const child = `_${pascal([...prefix, key].join(" "))}Module`;
        emit(child, entry, [...prefix, key]);
        lines.push(`    ${attribute}: Final[${child}] = ${child}()`);
      }
    }
    classes.push(lines.join("\n"));
  };
  emit("_Api", tree, []);
  return [
    '"""Typed references to this app\'s public Convex functions, from their validators.',
    "",
    "Generated by `flask convex codegen` (and `flask convex dev` on every reload): do not edit.",
    '"""',
    "",
    "# ruff: noqa",
    "from typing import Any, Final, Literal, NewType, NotRequired, TypedDict, TypeAlias, Union",
    "",
    "from flask_convex import ConvexInt64, FunctionReference, NoArgs",
    "",
    ...types.lines,
    ...classes.flatMap((source) => ["", source, ""]),
    "",
    "api: Final = _Api()",
    '"""The root of typed function references: `api.tasks.list`."""',
    "",
  ].join("\n");
}

/** Python type expressions for Convex validators, naming TypedDicts and aliases as it goes. */
class PythonTypes {
  constructor() {
    this.lines = [];
    this.ids = new Map();
    this.docs = new Map();
    this.names = new Set();
  }

  table(tableName) {
    const name = this.unique(`${pascal(tableName)}Id`);
    this.ids.set(tableName, name);
    this.lines.push(`${name} = NewType(${JSON.stringify(name)}, str)`, `"""An Id of a document of table ${JSON.stringify(tableName)}."""`, "");
  }

  doc(tableName, fields) {
    this.docs.set(tableName, this.typedDict(`${pascal(tableName)}Doc`, fields, `A document of table ${JSON.stringify(tableName)}.`));
  }

  unique(name) {
    let candidate = name;
    for (let n = 2; this.names.has(candidate); n++) candidate = `${name}${n}`;
    this.names.add(candidate);
    return candidate;
  }

  alias(name, validator, nameHint) {
    const expression = this.type(validator, nameHint);
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(expression)) return expression;
    const alias = this.unique(name);
    this.lines.push(`${alias}: TypeAlias = ${expression}`, "");
    return alias;
  }

  typedDict(name, fields, docstring = null) {
    const entries = Object.entries(fields).map(([key, { fieldType, optional }]) => {
      const type = this.type(fieldType, `${name}${pascal(key)}`);
      return `        ${JSON.stringify(key)}: ${optional ? `NotRequired[${type}]` : type},`;
    });
    const typedDict = this.unique(name);
    this.lines.push(`${typedDict} = TypedDict(`, `    ${JSON.stringify(typedDict)},`, "    {", ...entries, "    },", ")");
    if (docstring) this.lines.push(`"""${docstring}"""`);
    this.lines.push("");
    return typedDict;
  }

  type(validator, nameHint) {
    switch (validator.type) {
      case "string": return "str";
      // As validators export them: `v.number()` is "number", `v.int64()` "bigint".
      case "number": return "float";
      case "bigint": return "ConvexInt64";
      case "boolean": return "bool";
      case "null": return "None";
      case "bytes": return "bytes";
      case "any": return "Any";
      case "id": return this.ids.get(validator.tableName) ?? "str";
      case "literal": return pythonLiteral(validator.value);
      case "array": return `list[${this.type(validator.value, `${nameHint}Item`)}]`;
      case "record": return `dict[${this.type(validator.keys, `${nameHint}Key`)}, ${this.type(validator.values.fieldType, `${nameHint}Value`)}]`;
      case "object": return this.typedDict(nameHint, validator.value);
      case "union": return `Union[${validator.value.map((member, i) => this.type(member, `${nameHint}${i + 1}`)).join(", ")}]`;
      default: return "Any";
    }
  }
}

/** A literal's type: `Literal[...]` for strings and booleans; numbers arrive as floats or ConvexInt64. */
function pythonLiteral(value) {
  if (typeof value === "string") return `Literal[${JSON.stringify(value)}]`;
  if (typeof value === "boolean") return `Literal[${value ? "True" : "False"}]`;
  return typeof value === "number" ? "float" : "ConvexInt64";
}
