"""The example app's Convex functions (example/convex/), run on the local deployment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flask_convex.local import LocalDeployment

pytestmark = pytest.mark.integration

EXAMPLE_FUNCTIONS = Path(__file__).parents[1] / "example" / "convex"


@pytest.fixture(scope="module")
def example_url(convex_env: dict[str, str]) -> Iterator[str]:
    env = {
        "CONVEX_AUTH_ISSUER": convex_env["TEST_AUTH_ISSUER"],
        "CONVEX_AUTH_JWKS": convex_env["TEST_AUTH_JWKS"],
        "CONVEX_AUTH_APPLICATION_ID": convex_env["TEST_AUTH_APPLICATION_ID"],
    }
    with LocalDeployment(EXAMPLE_FUNCTIONS, env=env) as deployment:
        yield deployment.url


@pytest.fixture
def as_user(example_url: str, mint_token: Callable[..., str]) -> Callable[..., Any]:
    """Calls a function as `user` (a subject) or anonymously (None); returns the envelope."""

    def run(user: str | None, route: str, path: str, **args: Any) -> Any:
        headers = {"Authorization": f"Bearer {mint_token(user)}"} if user else {}
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
