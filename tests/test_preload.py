"""preload_query: every preload of a request resolves in one query_batch call."""

from __future__ import annotations

import json
from typing import Any

import httpcore
import httpx
import pytest
import respx
from flask import Flask
from flask.testing import FlaskClient

from flask_convex import (
    Convex,
    ConvexFunctionError,
    ConvexInt64,
    ConvexRequestError,
    api,
    apreloaded_query_result,
    fetch_mutation,
    fetch_query,
    preload_query,
    preloaded_query_result,
)


def echo_batch(request: httpx.Request) -> httpx.Response:
    """Answer each query with its own path and args; paths with "fail" throw."""
    results: list[dict[str, Any]] = []
    for query in json.loads(request.content)["queries"]:
        if "fail" in query["path"]:
            results.append({"status": "error", "errorMessage": f"{query['path']} failed"})
        else:
            results.append({"status": "success", "value": [query["path"], query["args"]]})
    return httpx.Response(200, json={"results": results})


@pytest.fixture
def batches(convex_api: respx.MockRouter) -> respx.Route:
    """/api/query_batch, answering with `echo_batch`."""
    return convex_api.post("/api/query_batch").mock(side_effect=echo_batch)


def batched(route: respx.Route, index: int = -1) -> list[str]:
    """The paths sent in one batch request."""
    return [query["path"] for query in json.loads(route.calls[index].request.content)["queries"]]


@pytest.mark.usefixtures("app")
def test_preloads_are_sent_together_in_one_request(batches: respx.Route) -> None:
    tasks = preload_query(api.tasks.list, {"list": "home"})
    count = preload_query(api.tasks.count)
    user = preload_query(api.users.me)
    stats = preload_query("dir/stats")
    assert not batches.called
    assert count.value == ["tasks:count", {}]
    assert tasks.value == ["tasks:list", {"list": "home"}]
    assert (user.value, preloaded_query_result(stats)) == (["users:me", {}], ["dir/stats", {}])
    assert batches.call_count == 1, [(c.request.url, c.request.content[:30]) for c in batches.calls]
    assert batched(batches) == ["tasks:list", "tasks:count", "users:me", "dir/stats"]


@pytest.mark.usefixtures("app")
def test_each_preload_fails_on_its_own(batches: respx.Route) -> None:
    good = preload_query(api.tasks.list)
    bad = preload_query(api.tasks.failing)
    with pytest.raises(ConvexFunctionError, match="tasks:failing failed"):
        preloaded_query_result(bad)
    with pytest.raises(ConvexFunctionError):
        bad.to_json()
    assert good.value == ["tasks:list", {}]
    assert batches.call_count == 1, [(c.request.url, c.request.content[:30]) for c in batches.calls]


@pytest.mark.usefixtures("app")
def test_a_failed_batch_fails_every_preload(convex_api: respx.MockRouter) -> None:
    convex_api.post("/api/query_batch").respond(503, json={"code": "Overloaded", "message": "busy"})
    first, second = preload_query(api.tasks.list), preload_query(api.tasks.count)
    for preloaded in (first, second):
        with pytest.raises(ConvexRequestError, match="busy"):
            preloaded_query_result(preloaded)


@pytest.mark.usefixtures("app")
def test_a_preload_after_the_batch_starts_a_new_batch(batches: respx.Route) -> None:
    assert preload_query(api.tasks.list).value == ["tasks:list", {}]
    later = preload_query(api.tasks.count)
    assert batches.call_count == 1, [(c.request.url, c.request.content[:30]) for c in batches.calls]
    assert later.value == ["tasks:count", {}]
    assert batches.call_count == 2
    assert batched(batches) == ["tasks:count"]


@pytest.mark.usefixtures("app")
def test_preloads_for_other_tokens_and_deployments_go_in_their_own_batch(
    batches: respx.Route,
) -> None:
    other_url = "http://127.0.0.1:3210"
    with respx.mock(base_url=other_url) as other:
        other_batches = other.post("/api/query_batch").mock(side_effect=echo_batch)
        preloads = [
            preload_query(api.a.x),
            preload_query(api.b.x, token="alice"),
            preload_query(api.c.x),
            preload_query(api.d.x, token="alice"),
            preload_query(api.e.x, url=other_url),
        ]
        assert [p.value[0] for p in preloads] == ["a:x", "b:x", "c:x", "d:x", "e:x"]
    assert sorted(batched(batches, i) for i in range(batches.call_count)) == [
        ["a:x", "c:x"],
        ["b:x", "d:x"],
    ]
    authorization = {
        tuple(batched(batches, i)): call.request.headers.get("Authorization")
        for i, call in enumerate(batches.calls)
    }
    assert authorization == {("a:x", "c:x"): None, ("b:x", "d:x"): "Bearer alice"}
    assert batched(other_batches) == ["e:x"]


@pytest.mark.usefixtures("app")
def test_the_same_query_is_sent_once(batches: respx.Route) -> None:
    first = preload_query(api.tasks.list, {"n": 1})
    second = preload_query(api.tasks.list, {"n": 1.0})
    other = preload_query(api.tasks.list, {"n": 2})
    assert first.value == second.value == ["tasks:list", {"n": 1.0}]
    assert other.value == ["tasks:list", {"n": 2.0}]
    assert batched(batches) == ["tasks:list", "tasks:list"]
    assert preload_query(api.tasks.list, {"n": 1}).value == first.value
    assert batches.call_count == 1, [(c.request.url, c.request.content[:30]) for c in batches.calls]


@pytest.mark.usefixtures("app")
def test_fetch_query_reuses_a_resolved_preload(
    batches: respx.Route, convex_api: respx.MockRouter
) -> None:
    queries = convex_api.post("/api/query").respond(json={"status": "success", "value": 0.0})
    assert preload_query(api.tasks.list).value == ["tasks:list", {}]
    assert fetch_query(api.tasks.list) == ["tasks:list", {}]
    assert not queries.called


@pytest.mark.usefixtures("app")
def test_a_preload_reuses_an_earlier_fetch_query(
    batches: respx.Route, convex_api: respx.MockRouter
) -> None:
    convex_api.post("/api/query").respond(json={"status": "success", "value": 3.0})
    assert fetch_query(api.tasks.count) == 3.0
    assert preload_query(api.tasks.count).value == 3.0
    assert not batches.called


@pytest.mark.usefixtures("app")
def test_a_mutation_makes_resolved_preloads_stale(
    batches: respx.Route, convex_api: respx.MockRouter
) -> None:
    convex_api.post("/api/mutation").respond(json={"status": "success", "value": None})
    assert preload_query(api.tasks.list).value == ["tasks:list", {}]
    fetch_mutation(api.tasks.create)
    assert preload_query(api.tasks.list).value == ["tasks:list", {}]
    assert batches.call_count == 2


@pytest.mark.usefixtures("app")
def test_a_rejected_token_is_refreshed_for_the_batch(
    convex: Convex, convex_api: respx.MockRouter
) -> None:
    expired = httpx.Response(401, json={"code": "InvalidAuthHeader", "message": "expired"})
    fine = httpx.Response(200, json={"results": [{"status": "success", "value": 1.0}]})
    route = convex_api.post("/api/query_batch").mock(side_effect=[expired, fine])
    convex.token_loader(lambda force_refresh=False: "fresh" if force_refresh else "stale")
    assert preload_query(api.tasks.list).value == 1.0
    used = [call.request.headers["Authorization"] for call in route.calls]
    assert used == ["Bearer stale", "Bearer fresh"]


@pytest.mark.usefixtures("app")
def test_the_payload_for_use_preloaded_query(convex_api: respx.MockRouter) -> None:
    raw = [{"_id": "k1", "n": {"$integer": "AQAAAAAAAAA="}}]
    convex_api.post("/api/query_batch").respond(
        json={"results": [{"status": "success", "value": raw}]}
    )
    preloaded = preload_query(api.dir.file.fn, {"big": ConvexInt64(1), "b": b"hi"})
    assert (preloaded.name, repr(preloaded)) == ("dir/file:fn", "<Preloaded dir/file:fn pending>")
    assert preloaded.to_json() == {
        "_name": "dir/file:fn",
        "_argsJSON": {"big": {"$integer": "AQAAAAAAAAA="}, "b": {"$bytes": "aGk="}},
        "_valueJSON": raw,
    }
    assert preloaded.value == [{"_id": "k1", "n": ConvexInt64(1)}]
    assert repr(preloaded) == "<Preloaded dir/file:fn resolved>"


def test_an_async_view_reads_its_preloads_in_one_batch(
    app: Flask, client: FlaskClient, batches: respx.Route
) -> None:
    @app.get("/")
    async def page() -> dict[str, Any]:
        tasks, user = preload_query(api.tasks.list), preload_query(api.users.me)
        return {"tasks": await apreloaded_query_result(tasks), "user": user.value}

    assert client.get("/").json == {"tasks": ["tasks:list", {}], "user": ["users:me", {}]}
    assert batches.call_count == 1, [(c.request.url, c.request.content[:30]) for c in batches.calls]


@pytest.mark.integration
def test_against_the_local_deployment_preloads_resolve_in_one_request(
    convex_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Flask(__name__)
    app.config["CONVEX_URL"] = convex_url
    Convex(app)
    sent: list[str] = []
    pool = app.extensions["convex"].transport.http
    send = pool.handle_request

    def recording(request: httpcore.Request) -> httpcore.Response:
        sent.append(request.url.target.decode())
        return send(request)

    monkeypatch.setattr(pool, "handle_request", recording)
    with app.test_request_context():
        fetch_mutation(api.counter.increment, {"name": "a", "by": 4})
        count = preload_query(api.counter.get, {"name": "a"})
        missing = preload_query(api.counter.get, {"name": "b"})
        failing = preload_query(api.errors.plainError)
        default = preload_query("values")
        assert count.to_json() == {
            "_name": "counter:get",
            "_argsJSON": {"name": "a"},
            "_valueJSON": 4.0,
        }
        assert (missing.value, default.value) == (0.0, "default export")
        with pytest.raises(ConvexFunctionError, match="boom"):
            preloaded_query_result(failing)
    assert sent == ["/api/mutation", "/api/query_batch"]
