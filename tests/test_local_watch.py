"""Reloading on save, whatever way the file is saved, against a real watching deployment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _local import call, eventually

from flask_convex.local import LocalDeployment

pytestmark = pytest.mark.integration

RELOADED = re.compile(r"^\d\d:\d\d:\d\d Reloaded Convex functions \((.*)\) in \d+ ms$")


def greeting(text: str) -> str:
    return (
        'import { queryGeneric as query } from "convex/server";\n'
        f"export const hello = query({{ args: {{}}, handler: async () => {text!r} }});\n"
    )


class Watched:
    """A watching deployment of a throw-away functions folder."""

    def __init__(self, deployment: LocalDeployment, folder: Path) -> None:
        self.deployment = deployment
        self.folder = folder

    def reloads(self) -> list[str]:
        """What each reload line said had changed, oldest first."""
        return [m.group(1) for line in self.deployment.output if (m := RELOADED.match(line))]

    def answer(self, module: str = "greet") -> object:
        return call(self.deployment.url, "query", f"{module}:hello").get("value")

    def wait_for(self, module: str, text: str) -> None:
        eventually(lambda: self.answer(module) == text, f"{module}:hello answering {text!r}")


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[Watched]:
    folder = tmp_path / "convex"
    folder.mkdir()
    (folder / "greet.ts").write_text(greeting("first"))
    (folder / "other.ts").write_text(greeting("other"))
    with LocalDeployment(folder, watch=True) as deployment:
        yield Watched(deployment, folder)


def test_in_place_writes_reload_and_say_which_file(watched: Watched) -> None:
    source = watched.folder / "greet.ts"
    for text in ("second", "third"):
        with source.open("r+") as file:  # the same inode, rewritten
            file.truncate(0)
            file.write(greeting(text))
        watched.wait_for("greet", text)
    # The reload line may reach the output a moment after the new build answers.
    eventually(lambda: watched.reloads() == ["greet.ts", "greet.ts"], "two reload lines")


def test_sed_in_place_then_later_in_place_saves_all_reload(watched: Watched) -> None:
    source = watched.folder / "greet.ts"
    subprocess.run(["sed", "-i", "s/first/by sed/", str(source)], check=True)
    watched.wait_for("greet", "by sed")
    # The file's inode changed: a watcher on the old one would miss these.
    for text in ("after sed", "after sed again"):
        source.write_text(greeting(text))
        watched.wait_for("greet", text)


def test_an_editors_atomic_save_reloads_every_time(watched: Watched) -> None:
    source = watched.folder / "greet.ts"
    for text in ("atomic 1", "atomic 2", "atomic 3"):
        temporary = watched.folder / ".greet.ts.swp"
        temporary.write_text(greeting(text))
        os.replace(temporary, source)
        watched.wait_for("greet", text)


def test_delete_and_create_reloads(watched: Watched) -> None:
    source = watched.folder / "greet.ts"
    source.unlink()
    eventually(lambda: "greet.ts" in watched.reloads(), "a reload after the delete")
    answer = httpx.post(
        f"{watched.deployment.url}/api/query", json={"path": "greet:hello", "args": {}}
    ).json()
    assert "Could not find public function for 'greet:hello'" in answer["errorMessage"]
    source.write_text(greeting("re-created"))
    watched.wait_for("greet", "re-created")


def test_a_git_checkout_of_many_files_reloads_them_all(watched: Watched) -> None:
    git = shutil.which("git")
    assert git is not None, "git is needed to test a checkout"

    def run(*args: str) -> None:
        subprocess.run(
            [git, "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=watched.folder,
            check=True,
            capture_output=True,
        )

    run("init", "-q", "-b", "main")
    run("add", ".")
    run("commit", "-qm", "first")
    run("checkout", "-qb", "change")
    (watched.folder / "greet.ts").write_text(greeting("branch greet"))
    (watched.folder / "other.ts").write_text(greeting("branch other"))
    (watched.folder / "added.ts").write_text(greeting("added"))
    run("add", ".")
    run("commit", "-qm", "change")
    watched.wait_for("added", "added")
    run("checkout", "-q", "main")
    watched.wait_for("greet", "first")
    watched.wait_for("other", "other")
    run("checkout", "-q", "change")
    watched.wait_for("greet", "branch greet")
    watched.wait_for("other", "branch other")
    assert watched.answer("added") == "added"


def test_saving_unchanged_contents_rebuilds_nothing(watched: Watched) -> None:
    greet = watched.folder / "greet.ts"
    greet.write_text(greet.read_text())  # an editor's save without edits
    greet.touch()
    (watched.folder / "other.ts").write_text(greeting("changed"))
    watched.wait_for("other", "changed")
    assert watched.reloads() == ["other.ts"]


def test_a_build_error_is_printed_and_the_last_good_build_keeps_serving(
    watched: Watched,
) -> None:
    source = watched.folder / "greet.ts"
    source.write_text("export const hello = ;\n")
    eventually(
        lambda: any(
            "Build failed (greet.ts); still serving" in line for line in watched.deployment.output
        ),
        "the build failure",
    )
    assert any("greet.ts:1:" in line for line in watched.deployment.output)
    assert watched.answer() == "first"
    source.write_text(greeting("fixed"))
    watched.wait_for("greet", "fixed")


def test_a_build_error_at_start_waits_for_the_fix(tmp_path: Path) -> None:
    source = tmp_path / "greet.ts"
    source.write_text("export const hello = ;\n")
    with LocalDeployment(tmp_path, watch=True) as deployment:
        status = httpx.get(f"{deployment.url}/_flask_convex/status").json()
        assert "greet.ts:1:" in status["buildError"]
        eventually(
            lambda: any("no functions are served until" in line for line in deployment.output),
            "the build error",
        )
        source.write_text(greeting("fixed"))
        eventually(
            lambda: call(deployment.url, "query", "greet:hello").get("value") == "fixed",
            "the fixed function",
        )


TSCONFIG = """{
  "compilerOptions": {
    "strict": true,
    "target": "ESNext",
    "module": "ESNext",
    "moduleResolution": "Bundler",
    "skipLibCheck": true,
    "noEmit": true
  },
  "exclude": ["./_generated"]
}
"""


def typed_greeting(expression: str) -> str:
    """A query on the generated builders that must return a string."""
    return (
        'import { query } from "./_generated/server";\n'
        "export const hello = query({ args: {}, "
        f"handler: async (): Promise<string> => {expression} }});\n"
    )


def test_a_type_error_on_reload_is_printed_and_the_last_good_build_keeps_serving(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "convex"
    folder.mkdir()
    (folder / "tsconfig.json").write_text(TSCONFIG)
    source = folder / "greet.ts"
    source.write_text(typed_greeting('"first"'))
    python_api = tmp_path / "convex_api.py"
    with LocalDeployment(
        folder, watch=True, codegen=True, typecheck="enable", python_api=python_api
    ) as deployment:
        watched = Watched(deployment, folder)
        assert watched.answer() == "first"
        described = python_api.read_text()
        refused = 'export const refused = query({ args: {}, handler: async () => "x" });\n'
        source.write_text(typed_greeting("1") + refused)
        eventually(
            lambda: any("convex/greet.ts(2," in line for line in deployment.output),
            "the type error",
        )
        assert any(
            "Build failed (greet.ts); still serving the last good build" in line
            for line in deployment.output
        )
        assert any(
            "error TS2322: Type 'number' is not assignable" in line for line in deployment.output
        )
        assert watched.answer() == "first"
        # convex_api.py describes the build that serves, not the refused one.
        assert python_api.read_text() == described
        source.write_text(typed_greeting('"fixed"'))
        watched.wait_for("greet", "fixed")
        eventually(lambda: watched.reloads() == ["greet.ts"], "one reload line")


def test_try_skips_an_app_without_tsconfig_which_enable_refuses(tmp_path: Path) -> None:
    folder = tmp_path / "convex"
    folder.mkdir()
    (folder / "greet.ts").write_text(typed_greeting("1"))
    with LocalDeployment(folder, codegen=True, typecheck="try") as deployment:
        assert call(deployment.url, "query", "greet:hello")["value"] == 1
    with LocalDeployment(folder, watch=True, codegen=True, typecheck="enable") as deployment:
        status = httpx.get(f"{deployment.url}/_flask_convex/status").json()
        assert "Found no convex/tsconfig.json" in status["buildError"]
