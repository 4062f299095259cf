"""The local deployment's HTTP API, checked with raw requests against the real server."""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from _local import call, decode_ts, eventually, int64
from joserfc.jwk import RSAKey

from flask_convex.local import LocalDeployment

TokenMinter = Callable[..., str]

pytestmark = pytest.mark.integration

ENCODED = "convex_encoded_json"


@pytest.fixture
def http(convex_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=convex_url, timeout=10) as client:
        yield client


def test_floats_are_written_with_a_decimal_point(http: httpx.Client) -> None:
    response = http.post(
        "/api/query", json={"path": "values:specialFloats", "args": {}, "format": ENCODED}
    )
    assert '"five":5.0' in response.text
    assert response.json()["value"] == {
        "nan": {"$float": "AAAAAAAA+H8="},
        "inf": {"$float": "AAAAAAAA8H8="},
        "negInf": {"$float": "AAAAAAAA8P8="},
        "negZero": {"$float": "AAAAAAAAAIA="},
        "five": 5.0,
        "half": 0.5,
    }


def test_int64_and_bytes_round_trip(http: httpx.Client) -> None:
    total = call(
        http, "query", "values:sumInt64", {"values": [int64(2**62), int64(-7)]}, format=ENCODED
    )
    assert total == {"status": "success", "value": int64(2**62 - 7)}
    echoed = call(
        http, "query", "values:echoBytes", {"data": {"$bytes": "aGVsbG8="}}, format=ENCODED
    )
    assert echoed["value"] == {"data": {"$bytes": "aGVsbG8="}, "length": 5.0}


def test_args_may_be_an_object_or_a_one_element_array(http: httpx.Client) -> None:
    as_object = call(http, "query", "values:echo", {"value": "x"})
    as_array = call(http, "query", "values:echo", [{"value": "x"}])
    assert as_object == as_array == {"status": "success", "value": "x"}


@pytest.mark.parametrize(
    ("format_", "expected"),
    [
        (None, {"n": "3", "b": "aGk=", "f": "NaN", "z": -0.0}),
        ("json", {"n": "3", "b": "aGk=", "f": "NaN", "z": -0.0}),
        ("convex_clean_json", {"n": "3", "b": "aGk=", "f": "NaN", "z": -0.0}),
        ("export_json", {"n": 3, "b": {"$bytes": "aGk="}, "f": {"$float": "AAAAAAAA+H8="}}),
        ("convex_json", {"n": int64(3), "b": {"$bytes": "aGk="}, "f": {"$float": "AAAAAAAA+H8="}}),
    ],
)
def test_output_formats(http: httpx.Client, format_: str | None, expected: dict[str, Any]) -> None:
    nan = {"$float": "AAAAAAAA+H8="}
    value = {"n": int64(3), "b": {"$bytes": "aGk="}, "f": nan, "z": {"$float": "AAAAAAAAAIA="}}
    body = {} if format_ is None else {"format": format_}
    result = call(http, "query", "values:echo", {"value": value}, **body)["value"]
    assert {key: result[key] for key in expected} == expected


def test_bad_format_is_400(http: httpx.Client) -> None:
    response = http.post("/api/query", json={"path": "values:echo", "args": {}, "format": "xml"})
    assert response.status_code == 400
    assert response.json()["code"] == "BadFormat"


def test_legacy_client_defaults_to_the_lossless_encoding(http: httpx.Client) -> None:
    body = {"path": "values:sumInt64", "args": {"values": [int64(1)]}}
    legacy = http.post("/api/query", json=body, headers={"Convex-Client": "npm-1.4.1"})
    modern = http.post("/api/query", json=body, headers={"Convex-Client": "npm-1.48.0"})
    assert legacy.json()["value"] == int64(1)
    assert modern.json()["value"] == "1"


def test_client_header_without_version_is_400(http: httpx.Client) -> None:
    response = http.post(
        "/api/query", json={"path": "values:echo", "args": {}}, headers={"Convex-Client": "npm"}
    )
    assert (response.status_code, response.json()["code"]) == (400, "InvalidClientVersion")


@pytest.mark.parametrize("path", ["values", "values:default", "values.js", "values.js:default"])
def test_default_export_spellings(http: httpx.Client, path: str) -> None:
    assert call(http, "query", path)["value"] == "default export"


def test_js_extension_names_the_same_function(http: httpx.Client) -> None:
    call(http, "mutation", "counter.js:increment", {"name": "c"})
    assert call(http, "query", "counter:get", {"name": "c"})["value"] == 1.0


@pytest.mark.parametrize(
    "path", ["values.ts:echo", "_deps/x:y", "values:1bad", "values:___", "", "a//b:c", "x-y:z"]
)
def test_invalid_paths_are_400(http: httpx.Client, path: str) -> None:
    response = http.post("/api/query", json={"path": path, "args": {}})
    assert response.status_code == 400
    assert response.json()["code"] == "BadConvexFunctionIdentifier"


def test_function_errors_are_200_with_status_error(http: httpx.Client) -> None:
    plain = call(http, "query", "errors:plainError")
    assert plain["status"] == "error"
    assert "Uncaught Error: boom" in plain["errorMessage"]
    assert "errors.ts:" in plain["errorMessage"]
    assert "errorData" not in plain
    convex_error = call(http, "query", "errors:convexError", format=ENCODED)
    assert convex_error["status"] == "error"
    assert convex_error["errorData"] == {"code": "BOOM", "count": int64(2), "detail": ["a", 1.5]}


def test_unknown_and_mistyped_functions_are_function_errors(http: httpx.Client) -> None:
    missing = call(http, "query", "counter:nope")
    assert "Could not find public function for 'counter:nope'" in missing["errorMessage"]
    mistyped = call(http, "mutation", "counter:get", {"name": "x"})
    assert (
        "Trying to execute counter.js:get as Mutation, but it is defined as Query."
        in (mistyped["errorMessage"])
    )
    internal = call(http, "query", "counter:secret")
    assert "Could not find public function for 'counter:secret'" in internal["errorMessage"]


def test_validator_failures_are_function_errors(http: httpx.Client) -> None:
    result = call(http, "query", "counter:get", {"name": 1})
    assert result["status"] == "error"
    assert "ArgumentValidationError: Value does not match validator." in result["errorMessage"]


def test_log_lines_carry_their_level(http: httpx.Client) -> None:
    result = call(http, "query", "logs:noisy")
    assert result["logLines"] == [
        "[LOG] 'hi' 1",
        "[INFO] 'info line'",
        "[WARN] 'warn line'",
        "[ERROR] 'error line' { a: 1 }",
    ]
    assert "logLines" not in call(http, "query", "values:echo", {"value": 1})


def test_every_kind_of_function_prints_its_logs_and_failure_named(
    http: httpx.Client, convex_deployment: LocalDeployment
) -> None:
    call(http, "query", "logs:noisy")
    call(http, "mutation", "logs:failingMutation")
    call(http, "action", "logs:chattyAction")
    printed = [
        "[CONVEX Q(logs:noisy)] [LOG] 'hi' 1",
        "[CONVEX Q(logs:noisy)] [WARN] 'warn line'",
        "[CONVEX M(logs:failingMutation)] [LOG] 'about to fail'",
        "[CONVEX M(logs:failingMutation)] Uncaught Error: mutation failed",
        "[CONVEX A(logs:chattyAction)] [DEBUG] 'debug from an action'",
    ]
    eventually(lambda: set(printed) <= set(convex_deployment.output), "the printed log lines")


def test_failed_mutation_commits_nothing(http: httpx.Client) -> None:
    ts_before = http.post("/api/query_ts").json()["ts"]
    result = call(http, "mutation", "errors:writeThenThrow", {"text": "ghost"})
    assert result["status"] == "error"
    assert call(http, "query", "counter:notes")["value"] == []
    assert http.post("/api/query_ts").json()["ts"] == ts_before


def test_actions_run_and_write(http: httpx.Client) -> None:
    result = call(http, "action", "counter:slowIncrement", {"name": "a", "ms": 5})
    assert result == {"status": "success", "value": 1.0}
    assert call(http, "query", "counter:get", {"name": "a"})["value"] == 1.0


def test_get_query_takes_url_parameters(http: httpx.Client) -> None:
    response = http.get(
        "/api/query", params={"path": "values:echo", "args": '{"value": [1, 2]}', "format": "json"}
    )
    assert response.json() == {"status": "success", "value": [1.0, 2.0]}


def test_run_route(http: httpx.Client) -> None:
    response = http.post("/api/run/values/echo", json={"args": {"value": int64(7)}})
    assert response.json() == {"status": "success", "value": "7"}
    assert (
        http.post("/api/run/counter/increment", json={"args": {"name": "r"}}).json()["value"] == 1
    )
    missing = http.post("/api/run/values", json={"args": {}})
    assert (missing.status_code, missing.json()["code"]) == (400, "MissingIdentifier")


def test_query_batch_answers_each_query_independently(http: httpx.Client) -> None:
    call(http, "mutation", "counter:increment", {"name": "b"})
    response = http.post(
        "/api/query_batch",
        json={
            "queries": [
                {"path": "counter:get", "args": {"name": "b"}},
                {"path": "errors:convexError", "args": {}, "format": ENCODED},
                {"path": "values:sumInt64", "args": [{"values": [int64(4)]}], "format": ENCODED},
            ]
        },
    )
    first, second, third = response.json()["results"]
    assert first == {"status": "success", "value": 1.0}
    assert second["status"] == "error"
    assert second["errorData"]["code"] == "BOOM"
    assert third == {"status": "success", "value": int64(4)}


def test_query_batch_reports_the_timestamp_it_read_at(http: httpx.Client) -> None:
    call(http, "mutation", "counter:increment", {"name": "s"})
    batch = {"queries": [{"path": "counter:get", "args": {"name": "s"}}] * 2}
    answer = http.post("/api/query_batch", json=batch).json()
    assert [result["value"] for result in answer["results"]] == [1.0, 1.0]
    assert answer["ts"] == http.post("/api/query_ts").json()["ts"]
    call(http, "mutation", "counter:increment", {"name": "s"})
    then = call(http, "query_at_ts", "counter:get", {"name": "s"}, ts=answer["ts"])
    assert then["value"] == 1.0


def test_query_at_ts_reads_the_past(http: httpx.Client) -> None:
    call(http, "mutation", "counter:increment", {"name": "t"})
    ts = http.post("/api/query_ts").json()["ts"]
    call(http, "mutation", "counter:increment", {"name": "t"})
    then = call(http, "query_at_ts", "counter:get", [{"name": "t"}], ts=ts)
    now = call(http, "query", "counter:get", {"name": "t"})
    assert (then["value"], now["value"]) == (1.0, 2.0)


def test_query_at_ts_too_old_is_refused(http: httpx.Client) -> None:
    old = base64.b64encode(struct.pack("<Q", 1)).decode()
    response = http.post(
        "/api/query_at_ts", json={"path": "counter:get", "args": {"name": "t"}, "ts": old}
    )
    assert response.status_code == 503
    assert response.json()["code"] == "OutOfRetention"


def test_query_ts_only_moves_on_commit(http: httpx.Client) -> None:
    first = http.post("/api/query_ts", headers={"content-type": "application/json"}).json()["ts"]
    call(http, "query", "counter:get", {"name": "q"})
    assert http.post("/api/query_ts").json()["ts"] == first
    call(http, "mutation", "counter:increment", {"name": "q"})
    later = http.post("/api/query_ts").json()["ts"]
    assert decode_ts(later) > decode_ts(first)


@pytest.mark.parametrize(
    ("content", "headers", "message"),
    [
        (b'{"path": "values:echo"}', {"content-type": "text/plain"}, "Content-Type"),
        (b'{"path": ', {"content-type": "application/json"}, "Failed to parse JSON body"),
        (b"[1, 2]", {"content-type": "application/json"}, "Expected a JSON object"),
    ],
)
def test_malformed_bodies_are_400(
    http: httpx.Client, content: bytes, headers: dict[str, str], message: str
) -> None:
    response = http.post("/api/mutation", content=content, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "BadJsonBody"
    assert message in response.json()["message"]


def test_bad_args_are_400(http: httpx.Client) -> None:
    for args in ("text", [1, 2], {"value": {"$integer": "nope"}}):
        response = http.post("/api/query", json={"path": "values:echo", "args": args})
        assert (response.status_code, response.json()["code"]) == (400, "BadJsonBody"), args


def test_oversized_body_is_413_and_the_server_keeps_serving(http: httpx.Client) -> None:
    huge = b'{"path": "values:echo", "args": {"value": "' + b"x" * (17 * 1024 * 1024) + b'"}}'
    response = http.post("/api/query", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "PayloadTooLarge"
    assert call(http, "query", "values:echo", {"value": "still up"})["value"] == "still up"


def test_double_slashes_are_collapsed(http: httpx.Client) -> None:
    response = http.post(
        f"{http.base_url}//api//query", json={"path": "values:echo", "args": {"value": 1}}
    )
    assert response.json() == {"status": "success", "value": 1.0}


def test_cors(http: httpx.Client) -> None:
    preflight = http.options(
        "/api/query",
        headers={
            "Origin": "http://app.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://app.test"
    assert preflight.headers["access-control-allow-headers"] == "content-type,authorization"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert preflight.headers["access-control-max-age"] == "86400"
    actual = http.post(
        "/api/query",
        json={"path": "values:echo", "args": {}},
        headers={"Origin": "http://app.test"},
    )
    assert actual.headers["access-control-allow-origin"] == "http://app.test"


def test_unknown_routes(http: httpx.Client) -> None:
    assert http.post("/api/nope", json={}).json()["code"] == "NotFound"
    wrong_method = http.get("/api/mutation")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "MethodNotAllowed")


def test_function_route_needs_an_admin_key(http: httpx.Client) -> None:
    response = http.post("/api/function", json={"path": "counter:secret", "args": {}})
    assert (response.status_code, response.json()["code"]) == (403, "BadDeployKey")


def test_functions_see_the_deployment_env(http: httpx.Client) -> None:
    assert call(http, "query", "counter:env", {"name": "GREETING"})["value"] == "hello from env"
    assert call(http, "query", "counter:env", {"name": "PATH"})["value"] is None


def test_reset_needs_the_admin_key(http: httpx.Client, convex_deployment: LocalDeployment) -> None:
    call(http, "mutation", "counter:increment", {"name": "w"})
    cross_site = http.post(
        "/_flask_convex/reset", content="x", headers={"content-type": "text/plain"}
    )
    assert (cross_site.status_code, cross_site.json()["code"]) == (403, "BadDeployKey")
    assert call(http, "query", "counter:get", {"name": "w"})["value"] == 1.0
    assert (
        http.post("/_flask_convex/reset", headers=convex_deployment.admin_headers).status_code
        == 200
    )
    assert call(http, "query", "counter:get", {"name": "w"})["value"] == 0.0


def test_identity_from_a_bearer_token(
    http: httpx.Client, mint_token: TokenMinter, convex_env: dict[str, str]
) -> None:
    issuer = convex_env["TEST_AUTH_ISSUER"]
    token = mint_token("alice", name="Alice", org={"id": "o1"}, fva=[1, 2])
    response = http.post(
        "/api/query",
        json={"path": "identity:whoami", "args": {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json()["value"] == {
        "tokenIdentifier": f"{issuer}|alice",
        "subject": "alice",
        "issuer": issuer,
        "name": "Alice",
        "org.id": "o1",
    }


def test_claims_cannot_impersonate_another_user(
    http: httpx.Client, mint_token: TokenMinter, convex_env: dict[str, str]
) -> None:
    issuer = convex_env["TEST_AUTH_ISSUER"]
    token = mint_token("mallory", tokenIdentifier=f"{issuer}|alice", issuer="https://other.test")
    response = http.post(
        "/api/query",
        json={"path": "identity:whoami", "args": {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    identity = response.json()["value"]
    assert (identity["tokenIdentifier"], identity["issuer"]) == (f"{issuer}|mallory", issuer)


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"exp": int(time.time()) - 60}, "Unauthenticated"),
        ({"iss": "https://elsewhere.test"}, "NoAuthProvider"),
        ({"aud": "another-app"}, "NoAuthProvider"),
        ({"sub": None}, "Unauthenticated"),
        ({"iss": None}, "InvalidAuthHeader"),
    ],
)
def test_bad_tokens_are_401_even_for_functions_ignoring_auth(
    http: httpx.Client, mint_token: TokenMinter, claims: dict[str, Any], code: str
) -> None:
    response = http.post(
        "/api/query",
        json={"path": "values:echo", "args": {}},
        headers={"Authorization": f"Bearer {mint_token(**claims)}"},
    )
    assert (response.status_code, response.json()["code"]) == (401, code)


def test_token_signed_by_another_key_is_401(http: httpx.Client, mint_token: TokenMinter) -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
    response = http.post(
        "/api/query",
        json={"path": "values:echo", "args": {}},
        headers={"Authorization": f"Bearer {mint_token(key=impostor)}"},
    )
    assert (response.status_code, response.json()["code"]) == (401, "Unauthenticated")


@pytest.mark.parametrize("header", ["Basic abc", "Bear", "Token x"])
def test_malformed_authorization_header_is_400(http: httpx.Client, header: str) -> None:
    response = http.post(
        "/api/query", json={"path": "values:echo", "args": {}}, headers={"Authorization": header}
    )
    assert response.status_code == 400
