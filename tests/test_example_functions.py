"""The example app's Convex functions (example/convex/), run on the local deployment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from example.app import create_app
from flask_convex import current_issuer

pytest_plugins = ("tests.example_fixtures",)

pytestmark = pytest.mark.integration


@pytest.fixture
def as_user(example_url: str, example_config: dict[str, Any]) -> Callable[..., Any]:
    """Calls a function as `user` (a subject) or anonymously (None); returns the envelope."""
    app = create_app(example_config)

    def run(user: str | None, route: str, path: str, **args: Any) -> Any:
        headers = {}
        if user:
            with app.app_context():
                headers["Authorization"] = f"Bearer {current_issuer().mint(user)}"
        body = {"path": path, "args": args}
        return httpx.post(f"{example_url}/api/{route}", json=body, headers=headers).json()

    return run


def test_each_caller_sees_only_their_own_tasks(as_user: Callable[..., Any]) -> None:
    as_user("ann", "mutation", "tasks:create", list="home", text="  Ann's task  ")
    as_user(None, "mutation", "tasks:create", list="home", text="Anyone's task")
    as_user("bob", "mutation", "tasks:create", list="work", text="Bob's task")
    ann = as_user("ann", "query", "tasks:list", list="home")["value"]
    assert [(task["text"], task["done"]) for task in ann] == [("Ann's task", False)]
    assert ann[0]["owner"].endswith("|ann")
    anonymous = as_user(None, "query", "tasks:list", list="home")["value"]
    assert [task["text"] for task in anonymous] == ["Anyone's task"]
    assert as_user("bob", "query", "tasks:list", list="home")["value"] == []


@pytest.mark.parametrize(
    ("text", "message"),
    [("   ", "Task text is required"), ("x" * 501, "Task text is limited to 500 characters")],
)
def test_create_validates_text(as_user: Callable[..., Any], text: str, message: str) -> None:
    result = as_user("ann", "mutation", "tasks:create", list="v", text=text)
    assert (result["status"], result["errorData"]) == ("error", message)


def test_only_the_owner_may_toggle_or_remove(as_user: Callable[..., Any]) -> None:
    task_id = as_user("ann", "mutation", "tasks:create", list="t", text="mine")["value"]
    for intruder in ("bob", None):
        for action in ("tasks:toggle", "tasks:remove"):
            refused = as_user(intruder, "mutation", action, id=task_id)
            assert refused["errorData"] == "Not found"
    assert as_user("ann", "mutation", "tasks:toggle", id=task_id)["status"] == "success"
    assert as_user("ann", "query", "tasks:list", list="t")["value"][0]["done"] is True
    assert as_user("ann", "mutation", "tasks:remove", id=task_id)["status"] == "success"
    assert as_user("ann", "query", "tasks:list", list="t")["value"] == []


def test_the_history_pages_newest_first_after_a_seed(as_user: Callable[..., Any]) -> None:
    assert as_user(None, "mutation", "history:seed", count=5)["status"] == "success"
    as_user(None, "mutation", "history:add", text="  Latest  ")
    first = as_user(None, "query", "history:list", paginationOpts={"numItems": 3, "cursor": None})
    page = first["value"]
    assert [entry["text"] for entry in page["page"]] == ["Latest", "Entry 5", "Entry 4"]
    rest = as_user(
        None,
        "query",
        "history:list",
        paginationOpts={"numItems": 10, "cursor": page["continueCursor"]},
    )["value"]
    assert ([entry["text"] for entry in rest["page"]], rest["isDone"]) == (
        ["Entry 3", "Entry 2", "Entry 1"],
        True,
    )


@pytest.mark.parametrize(
    ("route", "path", "args", "message"),
    [
        ("mutation", "history:seed", {"count": 0}, "count must be a whole number from 1 to 500"),
        ("mutation", "history:seed", {"count": 501}, "count must be a whole number from 1 to 500"),
        ("mutation", "history:add", {"text": " "}, "Entry text is required"),
        ("mutation", "history:add", {"text": "x" * 201}, "Entry text is limited to 200 characters"),
    ],
)
def test_history_writes_validate_their_input(
    as_user: Callable[..., Any], route: str, path: str, args: dict[str, Any], message: str
) -> None:
    result = as_user(None, route, path, **args)
    assert (result["status"], result["errorData"]) == ("error", message)
