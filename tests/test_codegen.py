"""Offline codegen: `_generated/` as `npx convex dev` writes it, type checked, and typed Python."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Final

import pytest

from flask_convex.local import LocalDeploymentError, codegen, install_server

EXAMPLE = Path(__file__).parent.parent / "example"
GENERATED = ("api.d.ts", "api.js", "dataModel.d.ts", "server.d.ts", "server.js")
SKIP_GENERATED = shutil.ignore_patterns("_generated")

# The convex/tsconfig.json `npx convex codegen --init` writes.
TSCONFIG = """{
  /* This TypeScript project config describes the environment that
   * Convex functions run in and is used to typecheck them.
   */
  "compilerOptions": {
    "allowJs": true,
    "strict": true,
    "moduleResolution": "Bundler",
    "jsx": "react-jsx",
    "skipLibCheck": true,
    "allowSyntheticDefaultImports": true,
    "target": "ESNext",
    "lib": ["ES2023", "dom"],
    "forceConsistentCasingInFileNames": true,
    "module": "ESNext",
    "isolatedModules": true,
    "noEmit": true,
  },
  "include": ["./**/*"],
  "exclude": ["./_generated"]
}
"""

# A small chat app as a user writes one: a schema, typed builders, `api` and
# `internal` references between functions, a nested module.
CHAT = {
    "tsconfig.json": TSCONFIG,
    "schema.ts": """
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  messages: defineTable({ author: v.string(), body: v.string(), likes: v.optional(v.int64()) })
    .index("by_author", ["author"]),
});
""",
    "messages.ts": """
import { v } from "convex/values";
import { action, internalQuery, mutation, query } from "./_generated/server";
import { api, internal } from "./_generated/api";
import type { Doc, Id } from "./_generated/dataModel";

const message = v.object({
  _id: v.id("messages"),
  _creationTime: v.number(),
  author: v.string(),
  body: v.string(),
  likes: v.optional(v.int64()),
});

export const list = query({
  args: { author: v.optional(v.string()) },
  returns: v.array(message),
  handler: async (ctx, { author }) =>
    author === undefined
      ? await ctx.db.query("messages").collect()
      : await ctx.db
          .query("messages")
          .withIndex("by_author", (q) => q.eq("author", author))
          .collect(),
});

export const send = mutation({
  args: { author: v.string(), body: v.string() },
  returns: v.id("messages"),
  handler: async (ctx, args): Promise<Id<"messages">> => await ctx.db.insert("messages", args),
});

export const count = internalQuery({
  args: {},
  returns: v.number(),
  handler: async (ctx) => (await ctx.db.query("messages").collect()).length,
});

export const summary = action({
  args: {},
  returns: v.string(),
  handler: async (ctx): Promise<string> => {
    const total: number = await ctx.runQuery(internal.messages.count, {});
    const all: Doc<"messages">[] = await ctx.runQuery(api.messages.list, {});
    return `${total} messages, the last by ${all.at(-1)?.author ?? "nobody"}`;
  },
});
""",
    "admin/stats.ts": """
import { query } from "../_generated/server";

export const authors = query({
  args: {},
  handler: async (ctx) => {
    const messages = await ctx.db.query("messages").collect();
    return [...new Set(messages.map((m) => m.author))];
  },
});
""",
}

# No schema: `dataModel.d.ts` comes from another template.
BARE = {
    "tsconfig.json": TSCONFIG,
    "hello.ts": """
import { query } from "./_generated/server";

export const hello = query({ args: {}, handler: async () => "hello" });
""",
}


def write_app(root: Path, files: dict[str, str]) -> Path:
    """Writes `files` into `root/convex/`; returns that folder."""
    for name, source in files.items():
        file = root / "convex" / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(source.lstrip())
    return root / "convex"


def as_npm_project(root: Path) -> Path:
    """Makes `root` a project as `npm install convex typescript` leaves it; returns `root`."""
    (root / "package.json").write_text('{"private": true, "dependencies": {"convex": "1.48.0"}}')
    (root / "node_modules").symlink_to(install_server() / "node_modules")
    return root


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("app")
    shutil.copytree(EXAMPLE / "convex", root / "convex", ignore=SKIP_GENERATED)
    codegen(root / "convex", root / "convex_api.py")
    return root


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chat")
    codegen(write_app(root, CHAT), root / "chat_api.py", "enable")
    return root


def test_writes_what_is_committed_in_the_example(generated: Path) -> None:
    for name in GENERATED:
        fresh = (generated / "convex" / "_generated" / name).read_text()
        assert fresh == (EXAMPLE / "convex" / "_generated" / name).read_text(), name
    assert (generated / "convex_api.py").read_text() == (EXAMPLE / "convex_api.py").read_text()


def test_api_types_come_from_the_modules(generated: Path) -> None:
    api = (generated / "convex" / "_generated" / "api.d.ts").read_text()
    assert 'import type * as tasks from "../tasks.js";' in api
    assert "ApiFromModules" in api
    assert "export declare const components: {};" in api
    server = (generated / "convex" / "_generated" / "server.d.ts").read_text()
    assert 'export declare const query: QueryBuilder<DataModel, "public">;' in server


def test_python_module_types_args_ids_and_docs(generated: Path) -> None:
    module = (generated / "convex_api.py").read_text()
    assert 'TasksId = NewType("TasksId", str)' in module
    assert '"owner": NotRequired[str],' in module
    assert '"id": TasksId,' in module
    assert "create: Final[FunctionReference[TasksCreateArgs, TasksId]]" in module


def test_unchanged_files_are_not_rewritten(generated: Path) -> None:
    assert codegen(generated / "convex", generated / "convex_api.py") == ""


def test_a_build_error_is_reported(tmp_path: Path) -> None:
    (tmp_path / "broken.ts").write_text("export const = ;\n")
    with pytest.raises(LocalDeploymentError, match=r"broken\.ts"):
        codegen(tmp_path, tmp_path / "api.py")


def tsc(project: Path) -> subprocess.CompletedProcess[str]:
    """`tsc --noEmit --project convex` in `project`, as `npx convex dev` runs it."""
    return subprocess.run(
        ["node", "node_modules/typescript/bin/tsc", "--noEmit", "--project", "convex"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_example_type_checks(generated: Path) -> None:
    # `enable` fails where `try` would skip; nothing is rewritten, so nothing is reported.
    assert codegen(generated / "convex", None, "enable") == ""


@pytest.mark.parametrize("project", ["generated", "chat"])
def test_plain_tsc_passes_with_the_generated_files(
    project: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    source: Path = request.getfixturevalue(project)
    shutil.copytree(source / "convex", tmp_path / "convex")
    result = tsc(as_npm_project(tmp_path))
    assert result.returncode == 0, result.stdout


TYPE_ERRORS = """
import { mutation } from "./_generated/server";
import { api } from "./_generated/api";

export const wrong = mutation({
  args: {},
  handler: async (ctx) => {
    await ctx.db.insert("messages", { author: 1, body: "b" });
    await ctx.runMutation(api.messages.send, { author: "a" });
  },
});
"""


def test_a_type_error_fails_codegen_naming_file_line_and_error(tmp_path: Path) -> None:
    folder = write_app(tmp_path, {**CHAT, "bad.ts": TYPE_ERRORS})
    with pytest.raises(LocalDeploymentError) as failure:
        codegen(folder, None, "enable")
    report = str(failure.value)
    assert "TypeScript typecheck via `tsc` failed." in report
    assert "convex/bad.ts(7,39): error TS2322: Type 'number' is not assignable" in report
    assert "convex/bad.ts(8,46): error TS2741: Property 'body' is missing" in report
    # As with `npx convex codegen`, the files are written before the check.
    assert (folder / "_generated" / "api.d.ts").exists()
    assert codegen(folder, None, "disable") == ""
    assert tsc(as_npm_project(tmp_path)).returncode != 0


def test_enable_needs_a_tsconfig_which_try_does_without(tmp_path: Path) -> None:
    wrong = 'export const n: number = "one";\n'
    folder = write_app(tmp_path, {"hello.ts": BARE["hello.ts"], "wrong.ts": wrong})
    codegen(folder, None, "try")
    with pytest.raises(LocalDeploymentError, match=r"Found no convex/tsconfig\.json"):
        codegen(folder, None, "enable")


def test_the_apps_own_paths_and_includes_are_kept(tmp_path: Path) -> None:
    tsconfig = TSCONFIG.replace(
        '"noEmit": true,', '"noEmit": true,\n    "paths": {"@lib/*": ["./lib/*"]},'
    ).replace('"exclude": ["./_generated"]', '"exclude": ["./_generated", "./drafts"]')
    files = {
        "tsconfig.json": tsconfig,
        "lib/greeting.ts": "export const greeting = (name: string): string => `hi ${name}`;\n",
        "hello.ts": 'import { query } from "./_generated/server";\n'
        'import { greeting } from "@lib/greeting";\n\n'
        'export const hello = query({ args: {}, handler: async () => greeting("you") });\n',
        "drafts/notes.ts": 'export const n: number = "excluded, so never checked";\n',
    }
    folder = write_app(tmp_path, files)
    codegen(folder, None, "enable")
    (folder / "hello.ts").write_text(files["hello.ts"].replace('greeting("you")', "greeting(1)"))
    with pytest.raises(LocalDeploymentError, match=r"convex/hello\.ts\(4,"):
        codegen(folder, None, "enable")


# What `npx convex codegen` 1.48.0 asks a deployment, answered as one without
# components does. The analysis holds only what the root's codegen reads (no
# static API or data model): its definition, without child components or env vars.
BACKEND_ANSWERS: Final[dict[str, Any]] = {
    "/api/get_config_hashes": {
        "config": {"functions": "convex/"},
        "moduleHashes": [],
        "nodeDependencies": [],
    },
    "/api/deploy2/start_push": {
        "environmentVariables": {},
        "externalDepsId": None,
        "componentDefinitionPackages": {},
        "appAuth": [],
        "analysis": {
            "": {
                "definition": {
                    "path": "",
                    "definitionType": {"type": "app"},
                    "childComponents": [],
                    "httpMounts": {},
                    "exports": {"type": "branch", "branch": []},
                    "envVars": [],
                },
                "schema": None,
                "functions": {},
                "udfConfig": {
                    "serverVersion": "1.48.0",
                    "importPhaseRngSeed": None,
                    "importPhaseUnixTimestamp": None,
                },
            }
        },
        "app": {
            "definitionPath": "",
            "componentPath": "",
            "args": {},
            "childComponents": {},
            "httpRoutes": {"httpModuleRoutes": None, "mounts": []},
            "exports": {},
        },
        "schemaChange": {"allocatedComponentIds": None, "schemaIds": None},
    },
}


class FakeBackend(BaseHTTPRequestHandler):
    """Answers BACKEND_ANSWERS' routes and records every route asked for."""

    calls: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.calls.append(self.path)
        answer = BACKEND_ANSWERS.get(self.path)
        body = json.dumps(answer if answer is not None else {"code": "NotFound"}).encode()
        self.send_response(200 if answer is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads `calls`."""


@pytest.fixture
def fake_backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeBackend)
    FakeBackend.calls = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("project", ["generated", "chat", "bare"])
def test_the_real_convex_codegen_writes_the_same_files(
    project: str, request: pytest.FixtureRequest, tmp_path: Path, fake_backend: str
) -> None:
    if project == "bare":
        ours = tmp_path / "ours"
        codegen(write_app(ours, BARE), None, "disable")
    else:
        ours = request.getfixturevalue(project)
    real = tmp_path / "real"
    shutil.copytree(ours / "convex", real / "convex", ignore=SKIP_GENERATED)
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONVEX_")}
    env |= {"CONVEX_SELF_HOSTED_URL": fake_backend, "CONVEX_SELF_HOSTED_ADMIN_KEY": "admin-key"}
    result = subprocess.run(
        ["node", "node_modules/convex/bin/main.js", "codegen", "--typecheck", "disable"],
        cwd=as_npm_project(real),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert FakeBackend.calls == ["/api/get_config_hashes", "/api/deploy2/start_push"]
    written = sorted(path.name for path in (real / "convex" / "_generated").iterdir())
    assert written == sorted(GENERATED)
    for name in GENERATED:
        theirs = (real / "convex" / "_generated" / name).read_text()
        assert (ours / "convex" / "_generated" / name).read_text() == theirs, name


def _mypy(directory: Path, source: str) -> subprocess.CompletedProcess[str]:
    (directory / "check.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "check.py"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )


GOOD = """
from flask_convex import afetch_action, afetch_mutation, afetch_query, apreloaded_query_result
from flask_convex import fetch_mutation, fetch_query, preload_query, preloaded_query_result
from flask_convex import api as untyped
from convex_api import TasksId, api
from chat_api import api as chat

new_id: TasksId = fetch_mutation(api.tasks.create, {"list": "l", "text": "t"})
fetch_mutation(api.tasks.toggle, {"id": new_id})
rows = preloaded_query_result(preload_query(api.tasks.list, {"list": "l"}))
anything = fetch_query(untyped.tasks.whatever)
text = fetch_query("tasks:list", {"list": "l"})

async def view() -> None:
    reveal_type(fetch_query(chat.messages.list, {}))
    reveal_type(await afetch_query(chat.messages.list, {"author": "a"}))
    reveal_type(await afetch_mutation(chat.messages.send, {"author": "a", "body": "b"}))
    reveal_type(await afetch_action(chat.messages.summary))
    reveal_type(await apreloaded_query_result(preload_query(chat.messages.list, {})))
    reveal_type(await afetch_query("messages:list", {}, token="t"))
"""

BAD = """
from flask_convex import afetch_action, afetch_mutation, afetch_query
from flask_convex import fetch_mutation, fetch_query
from convex_api import api
from chat_api import api as chat

fetch_query(api.tasks.lsit, {"list": "l"})
fetch_mutation(api.tasks.create, {"lst": "l", "text": "t"})
fetch_mutation(api.tasks.toggle, {"id": "not an id"})
name: str = fetch_mutation(api.tasks.create, {"list": "l", "text": "t"}) + 1

async def view() -> None:
    await afetch_query(chat.messages.lsit, {})
    await afetch_mutation(chat.messages.send, {"author": 1, "body": "b"})
    await afetch_action(chat.messages.summary, {"extra": 1})
    count: int = await afetch_action(chat.messages.summary)
"""


def test_mypy_accepts_right_calls_and_flags_wrong_ones(generated: Path, chat: Path) -> None:
    shutil.copy(chat / "chat_api.py", generated)
    good = _mypy(generated, GOOD)
    assert good.returncode == 0, good.stdout
    message = (
        "TypedDict({'_id': chat_api.MessagesId, '_creationTime': float, 'author': str, "
        "'body': str, 'likes'?: _convex.int64.ConvexInt64})"
    )
    # The async calls keep the return type exactly as the sync ones do.
    assert f'check.py:15: note: Revealed type is "list[{message}]"' in good.stdout
    assert f'check.py:16: note: Revealed type is "list[{message}]"' in good.stdout
    assert 'check.py:17: note: Revealed type is "chat_api.MessagesId"' in good.stdout
    assert 'check.py:18: note: Revealed type is "str"' in good.stdout
    assert f'check.py:19: note: Revealed type is "list[{message}]"' in good.stdout
    assert 'check.py:20: note: Revealed type is "Any"' in good.stdout
    bad = _mypy(generated, BAD)
    assert bad.returncode == 1
    assert 'check.py:7: error: "_TasksModule" has no attribute "lsit"' in bad.stdout
    # A wrong argument name (line 8) or type (line 9) matches no signature of fetch_mutation.
    assert 'check.py:8: error: No overload variant of "fetch_mutation"' in bad.stdout
    assert 'check.py:9: error: No overload variant of "fetch_mutation"' in bad.stdout
    assert 'check.py:10: error: Unsupported operand types for + ("TasksId" and "int")' in bad.stdout
    assert 'check.py:13: error: "_MessagesModule" has no attribute "lsit"' in bad.stdout
    assert 'check.py:14: error: No overload variant of "afetch_mutation"' in bad.stdout
    # A function without arguments takes none.
    assert 'check.py:15: error: No overload variant of "afetch_action"' in bad.stdout
    assert 'check.py:16: error: Argument 1 to "afetch_action" has incompatible type' in bad.stdout
