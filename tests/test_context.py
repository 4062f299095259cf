"""What a response gains from the Convex calls made for it: Server-Timing and Cache-Control."""

from __future__ import annotations

import re
from typing import Any

import pytest
import respx
from flask import Flask
from flask.testing import FlaskClient

from flask_convex import Convex, api, fetch_mutation, fetch_query, preload_query

TIMING = re.compile(r'convex(\d+);desc="([^"]*)";dur=(\d+\.\d)')


@pytest.fixture(autouse=True)
def deployment(convex_api: respx.MockRouter) -> None:
    """Every endpoint the views below call."""
    convex_api.post("/api/query").respond(json={"status": "success", "value": 1.0})
    convex_api.post("/api/mutation").respond(json={"status": "success", "value": None})
    convex_api.post("/api/query_batch").respond(
        json={"results": [{"status": "success", "value": 2.0}]}
    )


@pytest.fixture
def views(app: Flask) -> Flask:
    """The app with a view per kind of Convex use, and one without."""

    @app.get("/read")
    def read() -> dict[str, Any]:
        return {"a": fetch_query(api.tasks.list), "b": fetch_query(api.tasks.count)}

    @app.get("/preload")
    def preload() -> dict[str, Any]:
        return {"v": preload_query(api.tasks.list, {"x": 1}).value}

    @app.post("/write")
    def write() -> str:
        fetch_mutation(api.tasks.create)
        return "ok"

    @app.get("/plain")
    def plain() -> str:
        return "no convex here"

    return app


def timings(client: FlaskClient, path: str) -> list[tuple[str | Any, ...]]:
    """The (index, name, duration) of each Server-Timing entry of a GET."""
    entries = []
    for value in client.get(path).headers.getlist("Server-Timing"):
        match = TIMING.fullmatch(value)
        assert match, value
        entries.append(match.groups())
    return entries


@pytest.mark.usefixtures("views")
def test_server_timing_lists_each_call_when_debugging(app: Flask, client: FlaskClient) -> None:
    app.debug = True
    assert [(index, name) for index, name, _ in timings(client, "/read")] == [
        ("0", "tasks:list"),
        ("1", "tasks:count"),
    ]
    assert [name for _, name, _ in timings(client, "/preload")] == ["batch: tasks:list"]


@pytest.mark.usefixtures("views")
def test_server_timing_is_off_by_default_in_production(app: Flask, client: FlaskClient) -> None:
    assert "Server-Timing" not in client.get("/read").headers


@pytest.mark.usefixtures("views")
@pytest.mark.parametrize(("debug", "setting", "shown"), [(False, True, True), (True, False, False)])
def test_server_timing_follows_its_setting(
    app: Flask, client: FlaskClient, debug: bool, setting: bool, shown: bool
) -> None:
    app.debug = debug
    app.config["CONVEX_SERVER_TIMING"] = setting
    assert ("Server-Timing" in client.get("/read").headers) is shown


@pytest.mark.usefixtures("views")
def test_server_timing_never_shows_the_token(
    app: Flask, client: FlaskClient, convex: Convex
) -> None:
    app.config["CONVEX_SERVER_TIMING"] = True
    convex.token_loader(lambda: "secret.jwt.token")
    response = client.get("/read")
    assert response.headers.getlist("Server-Timing")
    assert "secret" not in str(response.headers)


@pytest.mark.usefixtures("views")
def test_each_response_times_only_its_own_calls(app: Flask, client: FlaskClient) -> None:
    app.config["CONVEX_SERVER_TIMING"] = True
    client.get("/read")
    assert len(timings(client, "/read")) == 2


@pytest.mark.usefixtures("views")
@pytest.mark.parametrize("path", ["/read", "/preload"])
def test_pages_built_from_convex_data_are_not_cached(client: FlaskClient, path: str) -> None:
    assert client.get(path).headers["Cache-Control"] == "no-store"


@pytest.mark.usefixtures("views")
def test_other_responses_keep_their_caching(client: FlaskClient) -> None:
    client.get("/read")
    assert "Cache-Control" not in client.get("/plain").headers
    assert "Cache-Control" not in client.post("/write").headers
