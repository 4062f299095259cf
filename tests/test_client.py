"""The transport: what goes on the wire and how every answer of protocol section 1.5 is read."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import convex
import httpx
import pytest
import respx

from benchmarks._stub import stub_thread
from flask_convex import (
    ConvexAuthError,
    ConvexConnectionError,
    ConvexError,
    ConvexFunctionError,
    ConvexInt64,
    ConvexOutcomeUnknownError,
    ConvexRequestError,
    __version__,
)
from flask_convex.client import Call, Transport, check_deployment_url
from flask_convex.connections import ConnectionPool
from flask_convex.values import args_key

URL = "https://happy-otter-123.convex.cloud"


@pytest.fixture
def transport() -> Iterator[Transport]:
    """A transport on its own connection pool, outside any Flask app."""
    pool = ConnectionPool(timeout=5)
    yield Transport(pool, f"flask-convex-{__version__}")
    pool.close()


def answer(router: respx.MockRouter, response: httpx.Response | Exception) -> respx.Route:
    """Make /api/query answer once with `response`."""
    return router.post("/api/query").mock(side_effect=[response])


def call(path: str, args: dict[str, Any] | None = None, url: str = URL) -> Call:
    """A call of `path` with `args` (already Convex-encoded) to `url`."""
    return Call(url, path, args or {}, args_key(args or {}))


def query(transport: Transport, token: str | None = None, url: str = URL) -> Any:
    """Run tasks:list and return its outcome."""
    return transport.call(call("tasks:list", url=url), "query", token)


# What is sent


def test_request_names_the_client_and_asks_for_convex_encoded_json(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    route = convex_api.post("/api/mutation").respond(json={"status": "success", "value": None})
    transport.call(call("tasks:create", {"text": "x"}), "mutation", None)
    mutation = route.calls.last.request
    assert mutation.url == f"{URL}/api/mutation"
    assert mutation.headers["Convex-Client"] == f"flask-convex-{__version__}"
    assert mutation.headers["Content-Type"] == "application/json"
    assert json.loads(mutation.content) == {
        "path": "tasks:create",
        "args": {"text": "x"},
        "format": "convex_encoded_json",
    }


def test_a_token_travels_as_a_bearer_header(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    route = convex_api.post("/api/query").respond(json={"status": "success", "value": None})
    query(transport, token="jwt.abc")
    query(transport)
    with_token, without = (call.request for call in route.calls)
    assert with_token.headers["Authorization"] == "Bearer jwt.abc"
    assert "Authorization" not in without.headers


# How answers are read


def test_success_decodes_the_value_and_keeps_the_raw_json(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    raw = [{"n": {"$integer": "AQAAAAAAAAA="}, "b": {"$bytes": "aGVsbG8="}}]
    answer(convex_api, httpx.Response(200, json={"status": "success", "value": raw}))
    outcome = query(transport)
    assert outcome.unwrap() == [{"n": ConvexInt64(1), "b": b"hello"}]
    assert outcome.raw == raw


def test_a_plain_values_encoded_form_stays_apart_from_a_changed_value(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    raw = [{"text": "b", "done": False, "_creationTime": 1.5}, {"text": "a", "done": True}]
    convex_api.post("/api/query").respond(json={"status": "success", "value": raw})
    outcome = query(transport)
    outcome.value.sort(key=lambda task: task["text"])
    outcome.value[0]["text"] = "changed"
    assert outcome.raw == raw


def test_each_result_of_a_plain_batch_reads_its_own_encoded_form(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    values = [[{"text": "first"}], None, {"n": 2.5}]
    results: list[dict[str, Any]] = [{"status": "success", "value": v} for v in values]
    results[1] = {"status": "success", "logLines": []}
    convex_api.post("/api/query_batch").respond(json={"results": results, "ts": "AQAAAAAAAAA="})
    outcomes = transport.query_batch([call("a:b"), call("a:c"), call("a:d")], None)
    outcomes[0].value[0]["text"] = "changed"
    assert [outcome.raw for outcome in outcomes] == values
    assert [outcome.ts for outcome in outcomes] == [1, 1, 1]


def test_a_batch_result_that_is_not_an_object_keeps_the_batch_timestamp(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    results = ["nonsense", {"status": "success", "value": 1.0}]
    convex_api.post("/api/query_batch").respond(json={"results": results, "ts": "AQAAAAAAAAA="})
    broken, fine = transport.query_batch([call("a:b"), call("a:c")], None)
    assert isinstance(broken.error, ConvexRequestError)
    assert (broken.ts, fine.ts, fine.value) == (1, 1, 1.0)


def test_values_read_from_equal_answers_share_an_origin_and_others_do_not(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    def result(value: float) -> dict[str, Any]:
        return {"status": "success", "value": value}

    convex_api.post("/api/query").mock(
        side_effect=[httpx.Response(200, json=result(n)) for n in (1.0, 1.0, 2.0)]
    )
    convex_api.post("/api/query_batch").respond(json={"results": [result(1.0), result(1.0)]})
    first, again, other = (query(transport).origin for _ in range(3))
    batch = transport.query_batch([call("a:b"), call("a:c")], None)
    assert first == again
    assert len({first, other, batch[0].origin, batch[1].origin}) == 4


def test_null_value_is_none(transport: Transport, convex_api: respx.MockRouter) -> None:
    answer(convex_api, httpx.Response(200, json={"status": "success", "value": None}))
    assert query(transport).unwrap() is None


def test_function_error_without_data(transport: Transport, convex_api: respx.MockRouter) -> None:
    body = {
        "status": "error",
        "errorMessage": "Uncaught Error: boom\n    at handler (../convex/tasks.ts:5:9)",
        "logLines": ["[LOG] 'starting'"],
    }
    answer(convex_api, httpx.Response(200, json=body))
    with pytest.raises(ConvexFunctionError) as caught:
        query(transport).unwrap()
    assert caught.value.message.startswith("Uncaught Error: boom")
    assert caught.value.log_lines == ["[LOG] 'starting'"]


def test_convex_error_carries_decoded_data_and_is_the_official_type(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    body = {
        "status": "error",
        "errorMessage": "[Request ID: 3f] Server Error",
        "errorData": {"code": "NOT_OWNER", "limit": {"$integer": "AQAAAAAAAAA="}},
    }
    answer(convex_api, httpx.Response(200, json=body))
    with pytest.raises(convex.ConvexError) as caught:
        query(transport).unwrap()
    assert isinstance(caught.value, ConvexError)
    assert caught.value.data == {"code": "NOT_OWNER", "limit": ConvexInt64(1)}
    assert str(caught.value) == "[Request ID: 3f] Server Error"


def test_convex_error_with_null_data_is_still_a_convex_error(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    body = {"status": "error", "errorMessage": "x", "errorData": None}
    answer(convex_api, httpx.Response(200, json=body))
    with pytest.raises(ConvexError) as caught:
        query(transport).unwrap()
    assert caught.value.data is None


@pytest.mark.parametrize("status", [400, 403, 404, 429, 500, 503])
def test_non_2xx_answers_raise_a_request_error(
    transport: Transport, convex_api: respx.MockRouter, status: int
) -> None:
    body = {"code": "BadConvexFunctionIdentifier", "message": "Invalid path"}
    answer(convex_api, httpx.Response(status, json=body))
    with pytest.raises(ConvexRequestError) as caught:
        query(transport)
    assert not isinstance(caught.value, ConvexAuthError)
    error = caught.value
    assert (error.status, error.code, error.message) == (status, body["code"], body["message"])


def test_401_is_an_auth_error(transport: Transport, convex_api: respx.MockRouter) -> None:
    body = {"code": "InvalidAuthHeader", "message": "Token expired"}
    answer(convex_api, httpx.Response(401, json=body))
    with pytest.raises(ConvexAuthError) as caught:
        query(transport, token="old")
    assert (caught.value.status, caught.value.code) == (401, "InvalidAuthHeader")


def test_non_json_5xx_body_is_reported_as_text(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    answer(convex_api, httpx.Response(502, text="<html>Bad Gateway</html>"))
    with pytest.raises(ConvexRequestError) as caught:
        query(transport)
    assert caught.value.status == 502
    assert caught.value.code == "Bad Gateway"
    assert "<html>Bad Gateway</html>" in caught.value.message


def test_legacy_560_is_not_a_success(transport: Transport, convex_api: respx.MockRouter) -> None:
    answer(convex_api, httpx.Response(560, json={"status": "success", "value": 1.0}))
    with pytest.raises(ConvexRequestError) as caught:
        query(transport)
    assert caught.value.status == 560


def test_unknown_http_status_is_a_request_error(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    answer(convex_api, httpx.Response(299, json={"status": "success", "value": 1.0}))
    with pytest.raises(ConvexRequestError) as caught:
        query(transport)
    assert caught.value.status == 299


def test_lone_surrogates_in_answers_become_replacement_characters(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    # Escaped in JSON (as a JavaScript string can hold them) and as CESU-8 bytes.
    text = b'{"status":"success","value":{"t":"a\\ud800b \\ud83d\\ude00","c":"\xed\xa0\x80"}}'
    answer(convex_api, httpx.Response(200, content=text))
    value = query(transport).unwrap()
    assert value == {"t": "a\ufffdb \U0001f600", "c": "\ufffd"}
    assert json.dumps(value, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(200, json={"status": "pending"}), "unknown status 'pending'"),
        (httpx.Response(200, text="not json"), "not JSON"),
        (httpx.Response(200, json=["success"]), "not a JSON object"),
        (httpx.Response(200, json={"status": "success", "value": 5}), "Bad JSON value"),
        (httpx.Response(200, json={"status": "success", "value": {"$integer": "AA=="}}), "8 bytes"),
        (httpx.Response(200, json={"status": "success", "value": {"$bytes": 5}}), "Convex-encoded"),
        (httpx.Response(200, text='{"status":"success","value":' + "[" * 100_000), "too deeply"),
    ],
)
def test_malformed_200_answers_are_request_errors(
    transport: Transport, convex_api: respx.MockRouter, response: httpx.Response, message: str
) -> None:
    answer(convex_api, response)
    with pytest.raises(ConvexRequestError, match=message) as caught:
        query(transport).unwrap()
    assert caught.value.code == "BadResponse"


# Connection failures


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.RemoteProtocolError("")])
def test_a_query_is_retried_once_on_a_connection_failure(
    transport: Transport, convex_api: respx.MockRouter, failure: Exception
) -> None:
    route = convex_api.post("/api/query").mock(
        side_effect=[failure, httpx.Response(200, json={"status": "success", "value": 2.0})]
    )
    assert query(transport).unwrap() == 2.0
    assert route.call_count == 2


def test_a_query_failing_twice_raises(transport: Transport, convex_api: respx.MockRouter) -> None:
    route = convex_api.post("/api/query").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ConvexConnectionError, match="Cannot reach"):
        query(transport)
    assert route.call_count == 2


@pytest.mark.parametrize("kind", ["mutation", "action"])
def test_writes_are_never_retried(
    transport: Transport, convex_api: respx.MockRouter, kind: Any
) -> None:
    route = convex_api.post(f"/api/{kind}").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json={})]
    )
    with pytest.raises(ConvexConnectionError):
        transport.call(call("tasks:create"), kind, None)
    assert route.call_count == 1


@pytest.mark.parametrize("timeout", [httpx.ReadTimeout(""), httpx.ConnectTimeout("")])
def test_a_timeout_is_a_connection_error(
    transport: Transport, convex_api: respx.MockRouter, timeout: Exception
) -> None:
    answer(convex_api, timeout)
    with pytest.raises(ConvexConnectionError, match="did not answer in time"):
        query(transport)


def test_the_timeout_bounds_the_whole_call_against_a_trickling_server() -> None:
    # Every byte arrives well within the timeout; the whole answer, seconds after it.
    with stub_thread(trickle=0.05) as (stub, url):
        transport = Transport(ConnectionPool(timeout=0.5), "flask-convex-test")
        with pytest.raises(ConvexConnectionError, match="did not answer in time") as caught:
            query(transport, url=url)
        assert not isinstance(caught.value, ConvexOutcomeUnknownError)
        with pytest.raises(ConvexOutcomeUnknownError, match="may have run"):
            transport.call(call("tasks:create", url=url), "mutation", None)
        assert stub.requests == 2


@pytest.mark.parametrize("kind", ["mutation", "action"])
@pytest.mark.parametrize(
    "lost",
    [
        httpx.ReadTimeout("timed out"),
        httpx.WriteTimeout("timed out"),
        httpx.ReadError("connection reset"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.Response(200, text="<html>truncated"),
    ],
    ids=["read-timeout", "write-timeout", "reset", "disconnected", "unreadable"],
)
def test_a_write_whose_answer_is_lost_has_an_unknown_outcome(
    transport: Transport, convex_api: respx.MockRouter, kind: Any, lost: Any
) -> None:
    route = convex_api.post(f"/api/{kind}").mock(side_effect=[lost])
    with pytest.raises(ConvexOutcomeUnknownError, match="may have run"):
        transport.call(call("tasks:create"), kind, None)
    assert route.call_count == 1


@pytest.mark.parametrize(
    "unsent",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("timed out"), httpx.PoolTimeout("full")],
)
def test_a_write_that_never_left_is_a_plain_connection_error(
    transport: Transport, convex_api: respx.MockRouter, unsent: Exception
) -> None:
    convex_api.post("/api/mutation").mock(side_effect=[unsent])
    with pytest.raises(ConvexConnectionError) as caught:
        transport.call(call("tasks:create"), "mutation", None)
    assert not isinstance(caught.value, ConvexOutcomeUnknownError)


# Function logs


def test_function_log_lines_go_to_the_functions_logger_at_their_level(
    transport: Transport, convex_api: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    lines = ["[LOG] 'a'", "[INFO] b", "[WARN] c", "[ERROR] d", "[DEBUG] e", "no prefix"]
    body = {"status": "success", "value": None, "logLines": lines}
    answer(convex_api, httpx.Response(200, json=body))
    with caplog.at_level(logging.DEBUG, logger="flask_convex.functions"):
        query(transport)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("flask_convex.functions", logging.INFO, "tasks:list: 'a'"),
        ("flask_convex.functions", logging.INFO, "tasks:list: b"),
        ("flask_convex.functions", logging.WARNING, "tasks:list: c"),
        ("flask_convex.functions", logging.ERROR, "tasks:list: d"),
        ("flask_convex.functions", logging.DEBUG, "tasks:list: e"),
        ("flask_convex.functions", logging.INFO, "tasks:list: no prefix"),
    ]


# Batches


def test_query_batch_sends_one_request_and_fails_each_query_on_its_own(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    results = [
        {"status": "success", "value": 1.0},
        {"status": "error", "errorMessage": "nope"},
    ]
    route = convex_api.post("/api/query_batch").respond(json={"results": results})
    first, second = transport.query_batch([call("a:x"), call("b:y", {"k": 1.0})], "t")
    assert first.unwrap() == 1.0
    assert isinstance(second.error, ConvexFunctionError)
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer t"
    assert json.loads(request.content) == {
        "queries": [
            {"path": "a:x", "args": {}, "format": "convex_encoded_json"},
            {"path": "b:y", "args": {"k": 1.0}, "format": "convex_encoded_json"},
        ]
    }


def test_the_body_carries_paths_and_arguments_as_json_whatever_they_hold(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    route = convex_api.post("/api/query_batch").respond(json={"results": [{"status": "success"}]})
    args = {"quote": 'say "hi"\\', "text": "caf\u00e9 \u2603", "nested": {"b": [1.0], "a": None}}
    transport.query_batch([call('odd"path\\:x', args)], None)
    (sent,) = json.loads(route.calls.last.request.content)["queries"]
    assert sent == {"path": 'odd"path\\:x', "args": args, "format": "convex_encoded_json"}


def test_a_batch_goes_to_one_deployment(transport: Transport) -> None:
    other = "https://other-otter-456.convex.cloud"
    with pytest.raises(ValueError, match="one deployment"):
        transport.query_batch([call("a:x"), call("a:y", url=other)], None)
    with pytest.raises(ValueError, match="one deployment"):
        transport.query_batch([], None)


def test_query_batch_with_the_wrong_number_of_results_is_refused(
    transport: Transport, convex_api: respx.MockRouter
) -> None:
    convex_api.post("/api/query_batch").respond(json={"results": []})
    with pytest.raises(ConvexRequestError, match="without results"):
        transport.query_batch([call("a:x")], None)


# Deployment URLs


@pytest.mark.parametrize(
    ("url", "checked"),
    [
        ("https://happy-otter-123.convex.cloud", "https://happy-otter-123.convex.cloud"),
        ("https://happy-otter-123.convex.cloud/", "https://happy-otter-123.convex.cloud"),
        ("http://127.0.0.1:3210", "http://127.0.0.1:3210"),
        ("http://localhost:3210/", "http://localhost:3210"),
        ("https://convex.example.com", "https://convex.example.com"),
    ],
)
def test_good_deployment_urls_lose_their_trailing_slash(url: str, checked: str) -> None:
    assert check_deployment_url(url) == checked


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "is not set"),
        ("ftp://happy-otter-123.convex.cloud", "must be an absolute http:// or https:// URL"),
        ("happy-otter-123.convex.cloud", "must be an absolute http:// or https:// URL"),
        ("https://", "must be an absolute http:// or https:// URL"),
        ("http://host:port", "is not a valid URL"),
        ("https://happy-otter-123.convex.site", "ends with .convex.site"),
    ],
)
def test_bad_deployment_urls_are_refused_naming_the_setting(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        check_deployment_url(url, setting="CONVEX_URL")
    assert str(caught.value).startswith("CONVEX_URL")


def test_the_url_check_can_be_skipped() -> None:
    assert check_deployment_url("tcp://anything/", skip_check=True) == "tcp://anything"
