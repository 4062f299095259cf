"""fetch_query, fetch_mutation, fetch_action and their async twins, as a view uses them."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from flask import Flask
from flask.testing import FlaskClient

from flask_convex import (
    Convex,
    ConvexAuthError,
    ConvexError,
    ConvexFunctionError,
    ConvexInt64,
    ConvexValueError,
    afetch_action,
    afetch_mutation,
    afetch_query,
    api,
    fetch_action,
    fetch_mutation,
    fetch_query,
)


def success(value: Any = None) -> dict[str, Any]:
    """A function's successful answer carrying `value` (already Convex-encoded)."""
    return {"status": "success", "value": value}


@pytest.fixture
def queries(convex_api: respx.MockRouter) -> respx.Route:
    """/api/query, answering a list of tasks."""
    return convex_api.post("/api/query").respond(json=success([{"text": "milk"}]))


@pytest.fixture
def mutations(convex_api: respx.MockRouter) -> respx.Route:
    """/api/mutation, answering a new id."""
    return convex_api.post("/api/mutation").respond(json=success("k57"))


@pytest.fixture
def actions(convex_api: respx.MockRouter) -> respx.Route:
    """/api/action, answering null."""
    return convex_api.post("/api/action").respond(json=success(None))


def sent(route: respx.Route, index: int = -1) -> Any:
    """The JSON body of a request the route received."""
    return json.loads(route.calls[index].request.content)


# Calls


@pytest.mark.usefixtures("app")
def test_fetch_query_returns_the_decoded_value(convex_api: respx.MockRouter) -> None:
    route = convex_api.post("/api/query").respond(
        json=success({"count": {"$integer": "BQAAAAAAAAA="}, "ratio": 0.5})
    )
    assert fetch_query(api.tasks.count, {"list": "home"}) == {"count": ConvexInt64(5), "ratio": 0.5}
    assert sent(route) == {
        "path": "tasks:count",
        "args": {"list": "home"},
        "format": "convex_encoded_json",
    }


@pytest.mark.usefixtures("app")
def test_args_default_to_an_empty_object(queries: respx.Route) -> None:
    fetch_query("tasks:list")
    assert sent(queries)["args"] == {}


@pytest.mark.usefixtures("app")
def test_args_are_encoded_on_the_wire(mutations: respx.Route) -> None:
    fetch_mutation(api.files.save, {"data": b"hi", "size": ConvexInt64(2), "n": 3, "tags": ("a",)})
    assert sent(mutations)["args"] == {
        "data": {"$bytes": "aGk="},
        "size": {"$integer": "AgAAAAAAAAA="},
        "n": 3.0,
        "tags": ["a"],
    }


@pytest.mark.usefixtures("app")
def test_mutations_and_actions_use_their_endpoints(
    mutations: respx.Route, actions: respx.Route
) -> None:
    assert fetch_mutation(api.tasks.create, {"text": "x"}) == "k57"
    assert fetch_action(api.ai.summarise) is None
    assert sent(mutations)["path"] == "tasks:create"
    assert sent(actions)["path"] == "ai:summarise"


@pytest.mark.usefixtures("app")
def test_a_convex_error_reaches_the_view(convex_api: respx.MockRouter) -> None:
    body = {"status": "error", "errorMessage": "full", "errorData": {"code": "FULL"}}
    convex_api.post("/api/mutation").respond(json=body)
    with pytest.raises(ConvexError) as caught:
        fetch_mutation(api.tasks.create, {"text": "x"})
    assert caught.value.data == {"code": "FULL"}


@pytest.mark.usefixtures("app")
def test_the_url_option_calls_another_deployment(convex_api: respx.MockRouter) -> None:
    with respx.mock(base_url="http://127.0.0.1:3210") as other:
        route = other.post("/api/query").respond(json=success(1.0))
        assert fetch_query("tasks:list", url="http://127.0.0.1:3210/") == 1.0
    assert route.called
    assert not convex_api.calls


@pytest.mark.usefixtures("app")
def test_a_bad_url_option_is_refused_naming_it() -> None:
    with pytest.raises(
        ValueError, match=r"^url 'https://x\.convex\.site' ends with \.convex\.site"
    ):
        fetch_query("tasks:list", url="https://x.convex.site")


def test_the_url_option_is_checked_as_config_says(app: Flask) -> None:
    app.config["CONVEX_SKIP_URL_CHECK"] = True
    with respx.mock(base_url="https://proxy.convex.site") as proxy:
        proxy.post("/api/query").respond(json=success(1.0))
        assert fetch_query("tasks:list", url="https://proxy.convex.site") == 1.0


# Bad input never reaches the network


@pytest.mark.usefixtures("app")
@pytest.mark.parametrize("call", [fetch_query, fetch_mutation, fetch_action])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["milk"], "args must be a dict"),
        ({"tags": {"a"}}, "args['tags']: set is not a Convex value"),
        ({"due": {"at": datetime.date(2024, 1, 1)}}, "args['due']['at']: date"),
        ({"n": 2**60}, "args['n']: 1152921504606846976 is outside ±2**53"),
        ({"$id": "x"}, "args['$id']: Field name $id starts with a '$'"),
        ({"by": {3: "x"}}, "args['by']: object keys must be str, found 3"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(
    convex_api: respx.MockRouter, call: Any, args: Any, message: str
) -> None:
    with pytest.raises(ConvexValueError) as caught:
        call(api.tasks.create, args)
    assert message in str(caught.value)
    assert not convex_api.calls


@pytest.mark.usefixtures("app")
def test_a_bad_function_path_is_refused_before_any_request(convex_api: respx.MockRouter) -> None:
    with pytest.raises(ValueError, match="reserved"):
        fetch_query("_system/x:list")
    assert not convex_api.calls


# Tokens


@pytest.mark.usefixtures("app")
def test_no_token_sends_no_authorization(queries: respx.Route) -> None:
    fetch_query(api.tasks.list)
    assert "Authorization" not in queries.calls.last.request.headers


@pytest.mark.usefixtures("queries", "mutations")
def test_the_token_loader_runs_once_per_request(
    app: Flask, client: FlaskClient, convex: Convex, convex_api: respx.MockRouter
) -> None:
    loads: list[str] = []

    @convex.token_loader
    def token() -> str:
        loads.append("load")
        return f"jwt-{len(loads)}"

    @app.get("/page")
    def page() -> dict[str, Any]:
        fetch_query(api.tasks.list)
        fetch_mutation(api.tasks.create, {"text": "x"})
        fetch_query(api.tasks.list, {"mine": True})
        return {}

    client.get("/page")
    assert len(loads) == 1
    client.get("/page")
    assert len(loads) == 2
    headers = [call.request.headers["Authorization"] for call in convex_api.calls]
    assert headers == ["Bearer jwt-1"] * 3 + ["Bearer jwt-2"] * 3


@pytest.mark.usefixtures("app")
def test_an_explicit_token_wins_over_the_loader(convex: Convex, queries: respx.Route) -> None:
    convex.token_loader(lambda: pytest.fail("the loader must not be called"))
    fetch_query(api.tasks.list, token="explicit")
    assert queries.calls.last.request.headers["Authorization"] == "Bearer explicit"


@pytest.mark.usefixtures("app")
def test_an_empty_explicit_token_means_no_token(convex: Convex, queries: respx.Route) -> None:
    convex.token_loader(lambda: "from-loader")
    fetch_query(api.tasks.list, token="")
    assert "Authorization" not in queries.calls.last.request.headers


@pytest.mark.usefixtures("app")
def test_a_loader_returning_none_sends_no_token(convex: Convex, queries: respx.Route) -> None:
    convex.token_loader(lambda: None)
    fetch_query(api.tasks.list)
    assert "Authorization" not in queries.calls.last.request.headers


def expired_then(value: Any) -> list[httpx.Response]:
    """Answers refusing the token once, then succeeding with `value`."""
    expired = httpx.Response(401, json={"code": "InvalidAuthHeader", "message": "expired"})
    return [expired, httpx.Response(200, json=success(value))]


@pytest.mark.usefixtures("app")
def test_a_rejected_token_is_refreshed_once(convex: Convex, convex_api: respx.MockRouter) -> None:
    route = convex_api.post("/api/mutation").mock(side_effect=expired_then("k1"))

    @convex.token_loader
    def token(force_refresh: bool = False) -> str:
        return "fresh" if force_refresh else "stale"

    assert fetch_mutation(api.tasks.create, {"text": "x"}) == "k1"
    used = [call.request.headers["Authorization"] for call in route.calls]
    assert used == ["Bearer stale", "Bearer fresh"]


@pytest.mark.usefixtures("app")
def test_a_rejected_token_without_refresh_raises(
    convex: Convex, convex_api: respx.MockRouter
) -> None:
    route = convex_api.post("/api/query").mock(side_effect=expired_then(1.0))
    convex.token_loader(lambda: "stale")
    with pytest.raises(ConvexAuthError, match="expired"):
        fetch_query(api.tasks.list)
    assert route.call_count == 1


@pytest.mark.usefixtures("app")
def test_a_rejected_explicit_token_is_not_refreshed(
    convex: Convex, convex_api: respx.MockRouter
) -> None:
    convex_api.post("/api/query").mock(side_effect=expired_then(1.0))
    convex.token_loader(lambda force_refresh=False: pytest.fail("no refresh for token="))
    with pytest.raises(ConvexAuthError):
        fetch_query(api.tasks.list, token="explicit")


# Dedup within a request


@pytest.mark.usefixtures("app")
def test_the_same_query_twice_is_sent_once(queries: respx.Route) -> None:
    assert fetch_query(api.tasks.list, {"a": 1}) == fetch_query("tasks:list", {"a": 1.0})
    assert queries.call_count == 1


@pytest.mark.usefixtures("app")
def test_different_args_or_tokens_are_different_queries(queries: respx.Route) -> None:
    fetch_query(api.tasks.list, {"a": 1})
    fetch_query(api.tasks.list, {"a": 2})
    fetch_query(api.tasks.list, {"a": 2}, token="other")
    assert queries.call_count == 3


@pytest.mark.usefixtures("app", "mutations", "actions")
@pytest.mark.parametrize("write", [fetch_mutation, fetch_action])
def test_a_write_makes_earlier_reads_stale(queries: respx.Route, write: Any) -> None:
    fetch_query(api.tasks.list)
    write(api.tasks.create)
    fetch_query(api.tasks.list)
    assert queries.call_count == 2


@pytest.mark.usefixtures("app")
def test_a_failed_write_also_makes_reads_stale(
    queries: respx.Route, convex_api: respx.MockRouter
) -> None:
    convex_api.post("/api/mutation").respond(json={"status": "error", "errorMessage": "no"})
    fetch_query(api.tasks.list)
    with pytest.raises(Exception, match="no"):
        fetch_mutation(api.tasks.create)
    fetch_query(api.tasks.list)
    assert queries.call_count == 2


def test_each_request_asks_again(app: Flask, client: FlaskClient, queries: respx.Route) -> None:
    app.add_url_rule("/", view_func=lambda: fetch_query(api.tasks.list))
    client.get("/")
    client.get("/")
    assert queries.call_count == 2


# Async views


def test_async_views_await_every_call(
    app: Flask,
    client: FlaskClient,
    queries: respx.Route,
    mutations: respx.Route,
    actions: respx.Route,
) -> None:
    @app.post("/tasks")
    async def create() -> dict[str, Any]:
        created = await afetch_mutation(api.tasks.create, {"text": "x"})
        await afetch_action(api.ai.notify, {"id": created})
        return {"id": created, "tasks": await afetch_query(api.tasks.list)}

    assert client.post("/tasks").json == {"id": "k57", "tasks": [{"text": "milk"}]}
    assert (queries.call_count, mutations.call_count, actions.call_count) == (1, 1, 1)


def test_async_calls_leave_the_event_loop_free(
    app: Flask, client: FlaskClient, convex_api: respx.MockRouter
) -> None:
    loop_ran = threading.Event()

    def answer_once_the_loop_ran(request: httpx.Request) -> httpx.Response:
        # Set by a coroutine: only a free event loop can run it while this call is in flight.
        if not loop_ran.wait(timeout=10):
            raise AssertionError("the event loop was blocked during the Convex call")
        return httpx.Response(200, json=success(1.0))

    convex_api.post("/api/query").mock(side_effect=answer_once_the_loop_ran)

    async def mark() -> None:
        loop_ran.set()

    @app.get("/")
    async def page() -> dict[str, Any]:
        value, _ = await asyncio.gather(afetch_query(api.tasks.list), mark())
        return {"value": value}

    assert client.get("/").json == {"value": 1.0}


# Against the local deployment


@pytest.fixture
def deployed(convex_url: str) -> Iterator[Flask]:
    """An app on the local deployment serving tests/functions/convex, inside a request."""
    app = Flask(__name__)
    app.config["CONVEX_URL"] = convex_url
    Convex(app)
    with app.test_request_context():
        yield app


@pytest.mark.integration
@pytest.mark.usefixtures("deployed")
def test_every_value_type_round_trips_through_convex() -> None:
    value = {
        "int64": [ConvexInt64(-(2**63)), ConvexInt64(2**63 - 1), ConvexInt64(0)],
        "bytes": b"\x00\xffhello",
        "floats": [1.5, 5, math.inf, -math.inf],
        "nested": {"list": [None, True, "text ✓", {"deep": [b"", 0.0]}]},
    }
    echoed = fetch_query(api.values.echo, {"value": value})
    assert echoed == {**value, "floats": [1.5, 5.0, math.inf, -math.inf]}
    assert isinstance(echoed["int64"][0], ConvexInt64)
    specials = fetch_query(api.values.specialFloats)
    assert math.isnan(specials["nan"])
    assert math.copysign(1.0, specials["negZero"]) == -1.0
    assert (specials["five"], specials["inf"], specials["negInf"]) == (5.0, math.inf, -math.inf)
    assert fetch_query(api.values.sumInt64, {"values": [ConvexInt64(2**40)] * 2}) == ConvexInt64(
        2**41
    )
    assert fetch_query("values") == "default export"


@pytest.mark.integration
@pytest.mark.usefixtures("deployed")
def test_function_failures_from_convex() -> None:
    with pytest.raises(ConvexError) as thrown:
        fetch_query(api.errors.convexError)
    assert thrown.value.data == {"code": "BOOM", "count": ConvexInt64(2), "detail": ["a", 1.5]}
    with pytest.raises(ConvexFunctionError, match="boom"):
        fetch_query(api.errors.plainError)
    with pytest.raises(ConvexFunctionError, match="Could not find public function"):
        fetch_query(api.errors.missing)
    with pytest.raises(ConvexFunctionError, match="failed after writing"):
        fetch_mutation(api.errors.writeThenThrow, {"text": "lost"})
    assert fetch_query(api.counter.notes) == []


@pytest.mark.integration
@pytest.mark.usefixtures("deployed")
def test_reads_after_a_write_see_it() -> None:
    assert fetch_query(api.counter.get, {"name": "hits"}) == 0.0
    assert fetch_mutation(api.counter.increment, {"name": "hits", "by": 2}) == 2.0
    assert fetch_query(api.counter.get, {"name": "hits"}) == 2.0
    assert fetch_action(api.counter.slowIncrement, {"name": "hits", "ms": 1}) == 3.0
    assert fetch_query(api.counter.get, {"name": "hits"}) == 3.0


@pytest.mark.integration
@pytest.mark.usefixtures("deployed")
def test_function_logs_from_convex(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="flask_convex.functions"):
        fetch_query(api.logs.noisy)
    levels = [(record.levelno, record.getMessage()) for record in caplog.records]
    assert levels[0] == (logging.INFO, "logs:noisy: 'hi' 1")
    assert [level for level, _ in levels[1:]] == [logging.INFO, logging.WARNING, logging.ERROR]


@pytest.mark.integration
def test_the_token_reaches_convex(deployed: Flask, convex_url: str, mint_token: Any) -> None:
    deployed.extensions["convex"].hooks.token_loader = lambda: mint_token("user-7")
    assert fetch_query(api.identity.whoami)["subject"] == "user-7"
    assert fetch_query(api.identity.whoami, token="") is None
    with pytest.raises(ConvexAuthError):
        fetch_query(api.identity.whoami, token=mint_token("user-7", exp=int(time.time()) - 60))
