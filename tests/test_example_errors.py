"""The example's error pages: Convex down or refusing answers a friendly page, never a bare 500."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
import respx
from flask import Flask

from example.app import create_app

pytest_plugins = ("tests.example_fixtures",)


def closed_port_url() -> str:
    """A local URL where nothing listens: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def unreachable(example_config: dict[str, Any]) -> Flask:
    """The example with its deployment down."""
    return create_app({**example_config, "CONVEX_URL": closed_port_url()})


@pytest.mark.parametrize("path", ["/", "/static", "/server"])
def test_a_page_says_tasks_are_unavailable_with_503(unreachable: Flask, path: str) -> None:
    answer = unreachable.test_client().get(path)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "10"
    assert "Tasks are unavailable" in answer.text
    assert "reload this page in a moment" in answer.text
    assert "Traceback" not in answer.text


def test_the_json_api_answers_json(unreachable: Flask) -> None:
    answer = unreachable.test_client().post("/api/tasks", json={"text": "Buy milk"})
    assert answer.status_code == 503
    assert answer.json == {"success": False, "error": answer.json["error"]}
    assert "cannot be reached" in answer.json["error"]


def test_a_lost_answer_to_a_write_says_it_may_have_been_saved(
    example_config: dict[str, Any],
) -> None:
    app = create_app({**example_config, "CONVEX_URL": "https://happy-otter-123.convex.cloud"})
    with respx.mock(base_url="https://happy-otter-123.convex.cloud") as convex:
        convex.post("/api/mutation").mock(side_effect=httpx.ReadTimeout("timed out"))
        answer = app.test_client().post("/api/tasks", json={"text": "Buy milk"})
    assert answer.status_code == 504
    assert "may have been saved" in answer.json["error"]  # type: ignore[index]


def test_a_refused_request_is_a_502_page(example_config: dict[str, Any]) -> None:
    app = create_app({**example_config, "CONVEX_URL": "https://happy-otter-123.convex.cloud"})
    with respx.mock(base_url="https://happy-otter-123.convex.cloud") as convex:
        refusal = {"code": "InternalServerError", "message": "Your request couldn't be completed"}
        convex.post("/api/query").respond(500, json=refusal)
        answer = app.test_client().get("/static")
    assert answer.status_code == 502
    assert "Tasks could not be loaded" in answer.text


def test_a_refused_api_request_is_json_and_pages_keep_flasks_error_pages(
    unreachable: Flask,
) -> None:
    client = unreachable.test_client()
    big = client.post("/api/tasks", data=b"x" * 300_000, content_type="application/json")
    assert big.status_code == 413
    assert big.json is not None
    assert big.json["success"] is False
    missing = client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.mimetype == "text/html"
