"""The package's shape: imports between its modules run one way, with no circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "flask_convex"


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


@pytest.mark.parametrize("module", sorted(_graph()))
def test_no_module_imports_itself_back(module: str) -> None:
    graph = _graph()
    seen: set[str] = set()
    stack = [(module, [module])]
    while stack:
        name, trail = stack.pop()
        for target in graph[name]:
            assert target != module, " -> ".join([*trail, target])
            if target not in seen:
                seen.add(target)
                stack.append((target, [*trail, target]))
