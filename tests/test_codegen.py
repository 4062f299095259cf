"""Offline codegen: `_generated/` as `npx convex dev` writes it, and typed Python references."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flask_convex.local import LocalDeploymentError, codegen

EXAMPLE = Path(__file__).parent.parent / "example"
GENERATED = ("api.d.ts", "api.js", "dataModel.d.ts", "server.d.ts", "server.js")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("app")
    skip = shutil.ignore_patterns("_generated")
    shutil.copytree(EXAMPLE / "convex", root / "convex", ignore=skip)
    codegen(root / "convex", root / "convex_api.py")
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
from flask_convex import fetch_mutation, fetch_query, preload_query, preloaded_query_result
from flask_convex import api as untyped
from convex_api import TasksId, api

new_id: TasksId = fetch_mutation(api.tasks.create, {"list": "l", "text": "t"})
fetch_mutation(api.tasks.toggle, {"id": new_id})
rows = preloaded_query_result(preload_query(api.tasks.list, {"list": "l"}))
anything = fetch_query(untyped.tasks.whatever)
text = fetch_query("tasks:list", {"list": "l"})
"""

BAD = """
from flask_convex import fetch_mutation, fetch_query
from convex_api import api

fetch_query(api.tasks.lsit, {"list": "l"})
fetch_mutation(api.tasks.create, {"lst": "l", "text": "t"})
fetch_mutation(api.tasks.toggle, {"id": "not an id"})
name: str = fetch_mutation(api.tasks.create, {"list": "l", "text": "t"}) + 1
"""


def test_mypy_accepts_right_calls_and_flags_wrong_ones(generated: Path) -> None:
    good = _mypy(generated, GOOD)
    assert good.returncode == 0, good.stdout
    bad = _mypy(generated, BAD)
    assert bad.returncode == 1
    assert 'check.py:5: error: "_TasksModule" has no attribute "lsit"' in bad.stdout
    # A wrong argument name (line 6) or type (line 7) matches no signature of fetch_mutation.
    assert 'check.py:6: error: No overload variant of "fetch_mutation"' in bad.stdout
    assert 'check.py:7: error: No overload variant of "fetch_mutation"' in bad.stdout
    assert 'check.py:8: error: Unsupported operand types for + ("TasksId" and "int")' in bad.stdout
