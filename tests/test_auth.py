"""Authentication: token loaders, the issuer for flask-login users, its keys and documents."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from convex import ConvexClient
from flask import Flask, Response, jsonify
from flask.testing import FlaskClient
from flask_login import LoginManager, UserMixin, login_user, logout_user
from jinja2 import DictLoader
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from flask_convex import (
    Convex,
    ConvexAuthError,
    ConvexConfigError,
    TokenIssuer,
    current_issuer,
    fetch_action,
    fetch_mutation,
    fetch_query,
    jwks_data_uri,
    preload_query,
)
from flask_convex.cli import convex_cli
from flask_convex.live import PageFragment, live_fragment, refresh

ISSUER = "https://app.example.com"
CONVEX_URL = "https://happy-otter-123.convex.cloud"


class User(UserMixin):
    """A flask-login user whose id is the token subject."""

    def __init__(self, user_id: str) -> None:
        self.id = user_id


def success(value: Any = None) -> httpx.Response:
    return httpx.Response(200, json={"status": "success", "value": value})


def rejected() -> httpx.Response:
    return httpx.Response(401, json={"code": "InvalidAuthHeader", "message": "Token expired"})


def bearer(request: httpx.Request) -> str | None:
    """The token a request to Convex carried."""
    header = request.headers.get("authorization")
    return header.removeprefix("Bearer ") if header else None


def make_app(convex: Convex, instance: Path, **config: Any) -> Flask:
    """An app with flask-login, the built-in issuer, and views that call Convex."""
    app = Flask(__name__, instance_path=str(instance))
    defaults = {"CONVEX_URL": CONVEX_URL, "CONVEX_AUTH_ISSUER": ISSUER}
    app.config.update(TESTING=True, SECRET_KEY="test", **{**defaults, **config})
    LoginManager(app).user_loader(User)
    convex.init_app(app)

    @app.post("/login/<user_id>")
    def login(user_id: str) -> str:
        login_user(User(user_id))
        return "in"

    @app.post("/logout")
    def logout() -> str:
        logout_user()
        return "out"

    @app.get("/tasks")
    def tasks() -> str:
        return str(fetch_query("tasks:list"))

    @app.get("/whoami")
    def whoami() -> Response:
        return jsonify(fetch_query("identity:whoami"))

    return app


@pytest.fixture
def convex() -> Convex:
    """The extension object, for registering loaders and claims."""
    return Convex()


@pytest.fixture
def convex_api() -> Iterator[respx.MockRouter]:
    """The deployment's HTTP API, faked: add routes such as `convex_api.post("/api/query")`."""
    with respx.mock(base_url=CONVEX_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
def site(convex: Convex, tmp_path: Path) -> Flask:
    """An app whose issuer keeps its key in a temporary instance folder.

    Not named `app`, so pytest-flask pushes no context that requests would share.
    """
    return make_app(convex, tmp_path / "instance")


def issuer_of(app: Flask) -> TokenIssuer:
    with app.app_context():
        return current_issuer()


@pytest.fixture
def queries(convex_api: respx.MockRouter) -> respx.Route:
    """`/api/query`, answering every call with success."""
    return convex_api.post("/api/query").mock(return_value=success("ok"))


def served_keys(client: FlaskClient) -> KeySet:
    return KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())


def verified(token: str, client: FlaskClient) -> jwt.Token:
    """The token decoded after checking its signature against the app's served JWKS."""
    return jwt.decode(token, served_keys(client), algorithms=["RS256"])


def logged_in(app: Flask, user_id: str) -> FlaskClient:
    client = app.test_client()
    client.post(f"/login/{user_id}")
    return client


# Token loaders


@pytest.fixture
def loader_calls(convex: Convex) -> list[bool]:
    """Registers a loader that records each call's force_refresh and returns 'token-<n>'."""
    calls: list[bool] = []

    @convex.token_loader
    def load(force_refresh: bool = False) -> str:
        calls.append(force_refresh)
        return f"token-{len(calls)}"

    return calls


def test_a_registered_loader_beats_the_issuer(
    site: Flask, loader_calls: list[bool], queries: respx.Route
) -> None:
    logged_in(site, "alice").get("/tasks")
    assert bearer(queries.calls.last.request) == "token-1"


def test_every_call_of_a_request_uses_one_loaded_token(
    site: Flask, convex_api: respx.MockRouter, loader_calls: list[bool]
) -> None:
    routes = [
        convex_api.post("/api/query").mock(return_value=success()),
        convex_api.post("/api/mutation").mock(return_value=success()),
        convex_api.post("/api/action").mock(return_value=success()),
        convex_api.post("/api/query_batch").mock(
            return_value=httpx.Response(
                200, json={"results": [{"status": "success", "value": 1.0}]}
            )
        ),
    ]
    with site.test_request_context():
        fetch_query("tasks:list")
        fetch_mutation("tasks:create", {"text": "x"})
        fetch_action("tasks:sync")
        assert preload_query("tasks:count").value == 1
    assert loader_calls == [False]
    assert [bearer(route.calls.last.request) for route in routes] == ["token-1"] * 4


def test_each_request_loads_its_own_token(
    site: Flask, loader_calls: list[bool], queries: respx.Route
) -> None:
    client = site.test_client()
    client.get("/tasks")
    client.get("/tasks")
    assert [bearer(call.request) for call in queries.calls] == ["token-1", "token-2"]


def test_an_explicit_token_wins_and_skips_the_loader(
    site: Flask, loader_calls: list[bool], queries: respx.Route
) -> None:
    with site.test_request_context():
        fetch_query("tasks:list", token="explicit")
    assert bearer(queries.calls.last.request) == "explicit"
    assert loader_calls == []


def test_an_empty_explicit_token_calls_convex_anonymously(
    site: Flask, loader_calls: list[bool], queries: respx.Route
) -> None:
    with site.test_request_context():
        fetch_query("tasks:list", token="")
    assert bearer(queries.calls.last.request) is None


def test_a_loader_returning_none_sends_no_authorization(
    site: Flask, convex: Convex, queries: respx.Route
) -> None:
    convex.token_loader(lambda: None)
    logged_in(site, "alice").get("/tasks")
    assert bearer(queries.calls.last.request) is None


def test_a_rejected_token_is_reloaded_once_with_force_refresh(
    site: Flask, convex_api: respx.MockRouter, loader_calls: list[bool]
) -> None:
    route = convex_api.post("/api/query").mock(side_effect=[rejected(), success("ok")])
    with site.test_request_context():
        assert fetch_query("tasks:list") == "ok"
    assert loader_calls == [False, True]
    assert [bearer(call.request) for call in route.calls] == ["token-1", "token-2"]


def test_a_loader_without_force_refresh_is_not_retried(
    site: Flask, convex: Convex, convex_api: respx.MockRouter
) -> None:
    convex.token_loader(lambda: "stale")
    route = convex_api.post("/api/query").mock(side_effect=[rejected(), success()])
    with site.test_request_context(), pytest.raises(ConvexAuthError, match="Token expired"):
        fetch_query("tasks:list")
    assert route.call_count == 1


def test_a_rejected_explicit_token_is_not_retried(
    site: Flask, loader_calls: list[bool], convex_api: respx.MockRouter
) -> None:
    route = convex_api.post("/api/query").mock(side_effect=[rejected(), success()])
    with site.test_request_context(), pytest.raises(ConvexAuthError):
        fetch_query("tasks:list", token="explicit")
    assert route.call_count == 1
    assert loader_calls == []


# The built-in issuer: minted tokens


def test_logged_in_users_get_a_token_convex_can_verify(
    site: Flask, convex: Convex, queries: respx.Route
) -> None:
    convex.identity_claims(lambda user: {"name": user.id.title(), "email": f"{user.id}@x.org"})
    client = logged_in(site, "alice")
    before = int(time.time())
    client.get("/tasks")
    token = verified(bearer(queries.calls.last.request) or "", client)
    assert token.header == {"alg": "RS256", "typ": "JWT", "kid": served_keys(client).keys[0].kid}
    claims = token.claims
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "alice"
    assert claims["aud"] == "flask-convex"
    assert before <= claims["iat"] <= time.time()
    assert claims["exp"] == claims["iat"] + 3600
    assert (claims["name"], claims["email"]) == ("Alice", "alice@x.org")
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": "flask-convex"},
        sub={"essential": True},
    ).validate(claims)


def test_audience_and_lifetime_follow_the_config(
    convex: Convex, tmp_path: Path, queries: respx.Route
) -> None:
    app = make_app(convex, tmp_path, CONVEX_AUTH_APPLICATION_ID="my-app", CONVEX_AUTH_TOKEN_TTL=600)
    client = logged_in(app, "bob")
    client.get("/tasks")
    claims = verified(bearer(queries.calls.last.request) or "", client).claims
    assert (claims["aud"], claims["exp"] - claims["iat"]) == ("my-app", 600)


def test_anonymous_users_get_no_token(site: Flask, queries: respx.Route) -> None:
    site.test_client().get("/tasks")
    assert bearer(queries.calls.last.request) is None


def test_after_logout_the_next_request_is_anonymous(site: Flask, queries: respx.Route) -> None:
    client = logged_in(site, "alice")
    client.get("/tasks")
    client.post("/logout")
    client.get("/tasks")
    first, second = (bearer(call.request) for call in queries.calls)
    assert first is not None
    assert second is None


def test_each_request_carries_the_identity_of_its_own_user(
    site: Flask, queries: respx.Route
) -> None:
    alice, bob = logged_in(site, "alice"), logged_in(site, "bob")
    for client in (alice, bob, alice):
        client.get("/tasks")
    subjects = [verified(bearer(c.request) or "", alice).claims["sub"] for c in queries.calls]
    assert subjects == ["alice", "bob", "alice"]


def test_tokens_are_reused_until_shortly_before_expiry(site: Flask) -> None:
    issuer = issuer_of(site)
    now = time.time()
    issuer.clock = lambda: now
    with site.test_request_context():
        login_user(User("alice"))
        first = issuer.user_token()
        assert issuer.user_token() == first
        issuer.clock = lambda: now + 3600 - 61
        assert issuer.user_token() == first
        issuer.clock = lambda: now + 3600 - 59
        assert issuer.user_token() != first


def test_users_and_changed_claims_get_their_own_tokens(site: Flask, convex: Convex) -> None:
    names = {"alice": "Alice"}
    convex.identity_claims(lambda user: {"name": names[user.id]})
    issuer = issuer_of(site)
    with site.test_request_context():
        login_user(User("alice"))
        first = issuer.user_token()
        names["alice"] = "Alice Liddell"
        renamed = issuer.user_token()
    with site.test_request_context():
        login_user(User("bob"))
        names["bob"] = "Bob"
        other = issuer.user_token()
    assert len({first, renamed, other}) == 3
    assert jwt.decode(renamed or "", issuer.signing_key).claims["name"] == "Alice Liddell"


def test_force_refresh_mints_a_different_token(site: Flask) -> None:
    with site.test_request_context():
        login_user(User("alice"))
        token = issuer_of(site).user_token()
        assert issuer_of(site).user_token(force_refresh=True) != token


def test_a_token_rejected_by_convex_is_reminted_once(
    site: Flask, convex_api: respx.MockRouter
) -> None:
    route = convex_api.post("/api/query").mock(side_effect=[rejected(), success("ok")])
    client = logged_in(site, "alice")
    assert client.get("/tasks").text == "ok"
    first, second = (bearer(call.request) or "" for call in route.calls)
    assert first != second
    assert verified(second, client).claims["sub"] == "alice"


def test_a_token_rejected_twice_raises_after_two_requests(
    site: Flask, convex_api: respx.MockRouter
) -> None:
    route = convex_api.post("/api/query").mock(side_effect=[rejected(), rejected(), success()])
    with site.test_request_context():
        login_user(User("alice"))
        with pytest.raises(ConvexAuthError) as caught:
            fetch_query("tasks:list")
    assert (caught.value.status, caught.value.code) == (401, "InvalidAuthHeader")
    assert route.call_count == 2


def test_tokens_stay_out_of_pages_headers_and_logs(
    site: Flask, queries: respx.Route, caplog: pytest.LogCaptureFixture
) -> None:
    site.config["CONVEX_SERVER_TIMING"] = True
    client = logged_in(site, "alice")
    with caplog.at_level(logging.DEBUG):
        response = client.get("/tasks")
    token = bearer(queries.calls.last.request)
    assert token
    assert response.headers.get_all("Server-Timing")
    assert token not in str(response.headers)
    assert token not in response.text
    assert caplog.records
    assert not [r for r in caplog.records if token in r.getMessage()]


# The built-in issuer: documents, keys, configuration


def test_the_jwks_is_public_json(site: Flask) -> None:
    client = site.test_client()
    response = client.get("/.well-known/jwks.json")
    assert response.content_type == "application/json"
    (key,) = response.get_json()["keys"]
    assert {"kty": "RSA", "use": "sig", "alg": "RS256", "e": "AQAB"}.items() <= key.items()
    assert key["kid"] == RSAKey.import_key(key).thumbprint()
    assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()


def test_the_discovery_document_names_the_issuer_exactly(site: Flask, queries: respx.Route) -> None:
    client = site.test_client()
    response = client.get("/.well-known/openid-configuration")
    assert response.content_type == "application/json"
    assert response.get_json() == {
        "issuer": ISSUER,
        "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
        "authorization_endpoint": ISSUER,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }


def test_the_generated_key_survives_restarts_and_is_private(convex: Convex, tmp_path: Path) -> None:
    first = make_app(convex, tmp_path).test_client()
    second = make_app(Convex(), tmp_path).test_client()
    assert served_keys(first).keys[0].kid == served_keys(second).keys[0].kid
    assert stat.S_IMODE(os.stat(tmp_path / "convex-auth-key.pem").st_mode) == 0o600


@pytest.fixture
def pem(tmp_path: Path) -> str:
    return RSAKey.generate_key(2048).as_pem(private=True).decode()


def expected_kid(pem: str) -> str:
    return RSAKey.import_key(pem).thumbprint()


@pytest.mark.parametrize("form", ["text", "path", "environment"])
def test_a_configured_key_is_used_instead(
    convex: Convex, tmp_path: Path, pem: str, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {}
    if form == "text":
        config["CONVEX_AUTH_PRIVATE_KEY"] = pem
    elif form == "path":
        (tmp_path / "key.pem").write_text(pem)
        config["CONVEX_AUTH_PRIVATE_KEY"] = str(tmp_path / "key.pem")
    else:
        monkeypatch.setenv("CONVEX_AUTH_PRIVATE_KEY", pem)
    client = make_app(convex, tmp_path / "instance", **config).test_client()
    assert [key.kid for key in served_keys(client).keys] == [expected_kid(pem)]
    assert not (tmp_path / "instance").exists()


def test_a_rotated_key_stays_published_until_its_tokens_expire(
    convex: Convex, tmp_path: Path
) -> None:
    old_app = make_app(convex, tmp_path)
    with old_app.test_request_context():
        login_user(User("alice"))
        old_token = current_issuer().user_token() or ""
    rotated = old_app.test_cli_runner().invoke(convex_cli, ["rotate-key"])
    new_kid = rotated.output.split()[3].rstrip(".")
    new_app = make_app(Convex(), tmp_path)
    client = new_app.test_client()
    assert served_keys(client).keys[0].kid == new_kid
    assert verified(old_token, client).claims["sub"] == "alice"
    with new_app.app_context():
        current_issuer().clock = lambda: time.time() + 3600 + 6
    assert [key.kid for key in served_keys(client).keys] == [new_kid]


def test_previous_keys_from_config_stay_published(convex: Convex, tmp_path: Path, pem: str) -> None:
    current = RSAKey.generate_key(2048).as_pem(private=True).decode()
    app = make_app(
        convex, tmp_path, CONVEX_AUTH_PRIVATE_KEY=current, CONVEX_AUTH_PREVIOUS_KEYS=[pem]
    )
    kids = [key.kid for key in served_keys(app.test_client()).keys]
    assert kids == [expected_kid(current), expected_kid(pem)]
    rotated = app.test_cli_runner().invoke(convex_cli, ["rotate-key"])
    assert rotated.exit_code == 1
    assert "CONVEX_AUTH_PREVIOUS_KEYS" in rotated.output


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"CONVEX_AUTH_ISSUER": "https://app.example.com/"}, "trailing '/'"),
        ({"CONVEX_AUTH_ISSUER": "app.example.com"}, "public URL"),
        ({"CONVEX_AUTH_ISSUER": "ftp://app.example.com"}, "public URL"),
        ({"CONVEX_AUTH_APPLICATION_ID": ""}, "CONVEX_AUTH_APPLICATION_ID"),
        ({"CONVEX_AUTH_TOKEN_TTL": 10}, "CONVEX_AUTH_TOKEN_TTL"),
        ({"CONVEX_AUTH_TOKEN_TTL": "3600"}, "CONVEX_AUTH_TOKEN_TTL"),
        ({"CONVEX_AUTH_PRIVATE_KEY": "/nonexistent/key.pem"}, "cannot read"),
        ({"CONVEX_AUTH_PRIVATE_KEY": "-----BEGIN nonsense"}, "not an RSA key"),
        (
            {"CONVEX_AUTH_PRIVATE_KEY": ECKey.generate_key("P-256").as_pem().decode()},
            "not an RSA key",
        ),
        (
            {"CONVEX_AUTH_PRIVATE_KEY": RSAKey.generate_key(2048).as_pem(private=False).decode()},
            "public key",
        ),
    ],
)
def test_bad_settings_are_named(
    convex: Convex, tmp_path: Path, config: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConvexConfigError, match=problem):
        make_app(convex, tmp_path, **config)


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        (lambda user: {"sub": "someone-else"}, "'sub', which the issuer sets"),
        (lambda user: {"exp": 2**40}, "'exp', which the issuer sets"),
        (lambda user: {"tokenIdentifier": "x|bob"}, "'tokenIdentifier', which Convex derives"),
        (lambda user: {"subject": "bob"}, "'subject', which Convex derives"),
        (lambda user: {"issuer": "https://evil"}, "'issuer', which Convex derives"),
        (lambda user: ["name"], "must be a dict"),
        (lambda user: {"when": object()}, "JSON values"),
    ],
)
def test_bad_identity_claims_are_named(
    site: Flask, convex: Convex, claims: Callable[[Any], Any], problem: str
) -> None:
    convex.identity_claims(claims)
    with site.test_request_context():
        login_user(User("alice"))
        with pytest.raises(ConvexConfigError, match=problem):
            fetch_query("tasks:list")


def test_mint_refuses_claims_that_would_name_another_user(site: Flask) -> None:
    with site.app_context(), pytest.raises(ConvexConfigError, match="from mint"):
        current_issuer().mint("carol", {"tokenIdentifier": f"{ISSUER}|bob"})


def test_a_user_without_an_id_is_named(site: Flask) -> None:
    with site.test_request_context():
        login_user(User(""))
        with pytest.raises(ConvexConfigError, match="get_id"):
            fetch_query("tasks:list")


def test_the_issuer_needs_flask_login(convex: Convex, tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(CONVEX_URL=CONVEX_URL, CONVEX_AUTH_ISSUER=ISSUER)
    convex.init_app(app)
    with app.test_request_context(), pytest.raises(ConvexConfigError, match="LoginManager"):
        fetch_query("tasks:list")


def test_without_an_issuer_there_are_no_documents_and_no_tokens(
    convex: Convex, tmp_path: Path
) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["CONVEX_URL"] = CONVEX_URL
    convex.init_app(app)
    assert app.test_client().get("/.well-known/jwks.json").status_code == 404
    with app.app_context(), pytest.raises(ConvexConfigError, match="CONVEX_AUTH_ISSUER"):
        current_issuer()


# auth.config.ts


def test_the_auth_config_points_a_deployment_at_the_jwks(site: Flask) -> None:
    assert issuer_of(site).auth_config() == (
        f"// Accept tokens minted by the Flask app at {ISSUER}.\n"
        "// Generated by `flask convex auth-config`.\n"
        "export default {\n"
        "  providers: [\n"
        "    {\n"
        '      type: "customJwt",\n'
        f'      issuer: "{ISSUER}",\n'
        f'      jwks: "{ISSUER}/.well-known/jwks.json",\n'
        '      algorithm: "RS256",\n'
        '      applicationID: "flask-convex",\n'
        "    },\n"
        "  ],\n"
        "};\n"
    )


@pytest.mark.parametrize("options", [[], ["--oidc"], ["--inline"]])
def test_flask_convex_auth_config_prints_it(site: Flask, options: list[str]) -> None:
    result = site.test_cli_runner().invoke(convex_cli, ["auth-config", *options])
    expected = issuer_of(site).auth_config(
        oidc="--oidc" in options, inline_jwks="--inline" in options
    )
    assert (result.exit_code, result.output) == (0, expected)


@pytest.mark.parametrize("command", ["auth-config", "rotate-key"])
def test_the_commands_explain_how_to_turn_the_issuer_on(
    convex: Convex, tmp_path: Path, command: str
) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    convex.init_app(app)
    result = app.test_cli_runner().invoke(convex_cli, [command])
    assert result.exit_code == 1
    assert "set CONVEX_AUTH_ISSUER" in result.output
    assert not list(tmp_path.iterdir())


def test_the_oidc_auth_config_names_domain_and_application(site: Flask) -> None:
    text = issuer_of(site).auth_config(oidc=True)
    assert f'      domain: "{ISSUER}",\n      applicationID: "flask-convex",\n' in text
    assert "customJwt" not in text
    with pytest.raises(ConvexConfigError, match="inline"):
        issuer_of(site).auth_config(oidc=True, inline_jwks=True)


def from_data_uri(uri: str) -> Any:
    """The JSON a data: URI carries, checking its media type."""
    prefix, _, payload = uri.partition(",")
    assert prefix == "data:text/plain;charset=utf-8;base64"
    return json.loads(base64.b64decode(payload))


def test_an_inline_auth_config_carries_the_served_jwks(site: Flask) -> None:
    text = issuer_of(site).auth_config(inline_jwks=True)
    uri = text.split('jwks: "', 1)[1].split('"', 1)[0]
    assert from_data_uri(uri) == site.test_client().get("/.well-known/jwks.json").get_json()
    assert "rotate-key" in text


def test_a_jwks_data_uri_decodes_to_the_jwks() -> None:
    jwks = {"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]}
    assert from_data_uri(jwks_data_uri(jwks)) == jwks


def test_the_deployment_env_names_issuer_jwks_and_audience(site: Flask) -> None:
    env = issuer_of(site).deployment_env()
    assert env.keys() == {"CONVEX_AUTH_ISSUER", "CONVEX_AUTH_JWKS", "CONVEX_AUTH_APPLICATION_ID"}
    assert (env["CONVEX_AUTH_ISSUER"], env["CONVEX_AUTH_APPLICATION_ID"]) == (
        ISSUER,
        "flask-convex",
    )
    served = site.test_client().get("/.well-known/jwks.json").get_json()
    assert from_data_uri(env["CONVEX_AUTH_JWKS"]) == served


# Against the local deployment, which trusts conftest's issuer, audience and key


@pytest.fixture
def trusted(
    convex_url: str, convex_env: dict[str, str], signing_key: RSAKey, tmp_path: Path
) -> Flask:
    """An app whose issuer signs with the key the session's local deployment trusts."""
    convex = Convex()
    convex.identity_claims(lambda user: {"name": user.id.title()})
    app = make_app(
        convex,
        tmp_path,
        CONVEX_URL=convex_url,
        CONVEX_AUTH_ISSUER=convex_env["TEST_AUTH_ISSUER"],
        CONVEX_AUTH_APPLICATION_ID=convex_env["TEST_AUTH_APPLICATION_ID"],
        CONVEX_AUTH_PRIVATE_KEY=signing_key,
    )
    app.jinja_loader = DictLoader({"who.html": "{{ value.subject if value else 'anonymous' }}"})
    return app


@pytest.mark.integration
def test_functions_see_the_logged_in_user_until_logout(
    trusted: Flask, convex_env: dict[str, str]
) -> None:
    issuer = convex_env["TEST_AUTH_ISSUER"]
    client = logged_in(trusted, "alice")
    assert client.get("/whoami").get_json() == {
        "tokenIdentifier": f"{issuer}|alice",
        "subject": "alice",
        "issuer": issuer,
        "name": "Alice",
    }
    client.post("/logout")
    assert client.get("/whoami").get_json() is None


@pytest.mark.integration
def test_the_official_client_accepts_a_minted_token(
    trusted: Flask, convex_url: str, convex_env: dict[str, str]
) -> None:
    token = issuer_of(trusted).mint("carol", {"email": "carol@example.test"})
    client = ConvexClient(convex_url)
    client.set_auth(token)

    async def first_identity() -> Any:
        async for identity in client.subscribe("identity:whoami", {}):
            return identity
        return None

    identity = asyncio.run(asyncio.wait_for(first_identity(), 10))
    assert identity["tokenIdentifier"] == f"{convex_env['TEST_AUTH_ISSUER']}|carol"
    assert identity["email"] == "carol@example.test"


@pytest.mark.integration
def test_a_live_fragment_polls_as_whoever_polls(trusted: Flask) -> None:
    with trusted.test_request_context():
        login_user(User("alice"))
        html = str(live_fragment(preload_query("identity:whoami"), "who.html"))
    assert ">alice<" in html
    assert "eyJ" not in html  # every JWT starts so: no token in the page
    fragment = PageFragment(
        re.findall(r' id="([^"]+)"', html)[0],
        re.findall(r'data-convex-ref="([^"]+)"', html)[0],
        re.findall(r'data-convex-hash="([^"]+)"', html)[0],
    )
    shown = []
    for user in ("bob", None):
        with trusted.test_request_context():
            if user:
                login_user(User(user))
            shown.append(str(refresh([fragment]).swaps[0]))
    assert ">bob<" in shown[0]
    assert ">anonymous<" in shown[1]


@pytest.mark.integration
def test_an_untrusted_token_fails_after_one_fresh_try(
    convex_url: str, convex_env: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(
        Convex(),
        tmp_path,
        CONVEX_URL=convex_url,
        CONVEX_AUTH_ISSUER=convex_env["TEST_AUTH_ISSUER"],
        CONVEX_AUTH_APPLICATION_ID=convex_env["TEST_AUTH_APPLICATION_ID"],
    )
    with app.test_request_context(), caplog.at_level(logging.DEBUG):
        login_user(User("alice"))
        with pytest.raises(ConvexAuthError) as caught:
            fetch_query("identity:whoami")
    assert (caught.value.status, caught.value.code) == (401, "Unauthenticated")
    sent = [r for r in caplog.records if r.name == "flask_convex.requests"]
    assert len(sent) == 2
    assert not [r for r in caplog.records if "eyJ" in r.getMessage()]
