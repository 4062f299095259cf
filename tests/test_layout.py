"""The package's shape: imports between its modules, Python and the local server's, run one way."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "flask_convex"
SERVER = PACKAGE / "local" / "server"
# A static import of a sibling module: `import ... from "./x.mjs"` or `import "./x.mjs"`.
SERVER_IMPORT = re.compile(r'^(?:import|export)\b[^;]*?["\']\./([\w-]+)\.mjs["\']', re.MULTILINE)


def _local_imports(path: Path) -> set[str]:
    """Every flask_convex module `path` imports, anywhere in it (TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("flask_convex."):
                found.add(node.module.split(".")[1])
    return found


def _graph() -> dict[str, set[str]]:
    modules = {path.stem: path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    return {name: _local_imports(path) & modules.keys() for name, path in modules.items()}


def test_the_graph_sees_the_imports_it_must() -> None:
    graph = _graph()
    assert {"state", "live", "auth", "cli"} <= graph["extension"]
    assert "state" in graph["fetch"]


def _server_graph() -> dict[str, set[str]]:
    """The local server's modules and the sibling modules each imports statically."""
    modules = {path.stem: path for path in SERVER.glob("*.mjs")}
    return {
        name: set(SERVER_IMPORT.findall(path.read_text())) & modules.keys()
        for name, path in modules.items()
    }


def test_the_server_graph_sees_the_imports_it_must() -> None:
    graph = _server_graph()
    assert {"http", "runtime", "sync"} <= graph["main"]
    assert "values" in graph["http"]  # imported over several lines


def _assert_no_circle(graph: dict[str, set[str]], module: str) -> None:
    seen: set[str] = set()
    stack = [(module, [module])]
    while stack:
        name, trail = stack.pop()
        for target in graph[name]:
            assert target != module, " -> ".join([*trail, target])
            if target not in seen:
                seen.add(target)
                stack.append((target, [*trail, target]))


@pytest.mark.parametrize("module", sorted(_graph()))
def test_no_module_imports_itself_back(module: str) -> None:
    _assert_no_circle(_graph(), module)


@pytest.mark.parametrize("module", sorted(_server_graph()))
def test_no_server_module_imports_itself_back(module: str) -> None:
    _assert_no_circle(_server_graph(), module)
