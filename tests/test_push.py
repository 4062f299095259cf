"""Push: the page's Convex client settings, the token endpoint, the unshared re-render,
and the change digest that Python and the page's JavaScript compute alike."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from convex import ConvexInt64
from convex.values import convex_to_json
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from flask_login import LoginManager, UserMixin, login_user, logout_user
from live_pages import (
    TOKEN,
    URL,
    FakeConvex,
    fake_convex,
    fragments_of,
    make_app,
    same_site_headers,
    soup,
)

from flask_convex import Convex, ConvexConfigError
from flask_convex.live import value_digest

STATIC = Path(__file__).parent.parent / "flask_convex" / "static"
TASKS = [{"_id": "t1", "text": "Buy milk"}]


@pytest.fixture
def app() -> Flask:
    return make_app()


@pytest.fixture
def convex() -> Iterator[FakeConvex]:
    with fake_convex(TASKS) as fake:
        yield fake


def flask_convex_script(html: bytes) -> Any:
    return soup(html).select("head script")[-1]


# The page's settings


def test_pages_load_the_convex_client_and_subscribe_to_convex_url(
    client: FlaskClient, convex: FakeConvex
) -> None:
    page = client.get("/").data
    sources = [str(s["src"]).split("?")[0] for s in soup(page).select("head script")]
    assert sources == [
        "/_convex/static/htmx.min.js",
        "/_convex/static/convex.min.js",
        "/_convex/static/flask-convex.js",
    ]
    script = flask_convex_script(page)
    assert script["data-convex-url"] == URL
    assert script["data-render-url"] == "/_convex/render"
    assert script["data-token-url"] == "/_convex/token"
    assert script.has_attr("data-convex-auth")
    assert TOKEN.encode() not in page


def test_pages_rendered_without_a_token_keep_the_socket_anonymous(convex: FakeConvex) -> None:
    page = make_app(user_token=None).test_client().get("/").data
    assert not flask_convex_script(page).has_attr("data-convex-auth")


def test_convex_public_url_is_what_browsers_connect_to(convex: FakeConvex) -> None:
    public = "https://public-otter-456.convex.cloud"
    page = make_app(CONVEX_PUBLIC_URL=public + "/").test_client().get("/").data
    assert flask_convex_script(page)["data-convex-url"] == public


def test_a_bad_convex_public_url_is_a_config_error() -> None:
    with pytest.raises(ConvexConfigError, match="CONVEX_PUBLIC_URL"):
        make_app(CONVEX_PUBLIC_URL="ws://nowhere")


def test_with_push_off_pages_only_poll(convex: FakeConvex) -> None:
    page = make_app(CONVEX_LIVE_PUSH=False).test_client().get("/").data
    script = flask_convex_script(page)
    assert not script.has_attr("data-convex-url")
    assert b"convex.min.js" not in page


def test_fragments_name_their_query_and_the_snapshot_they_show(
    client: FlaskClient, convex: FakeConvex
) -> None:
    convex.ts = 1_700_000_000_123_456_789
    tasks = soup(client.get("/").data).select_one("ul[data-convex-ref]")
    assert tasks is not None
    assert tasks["data-convex-query"] == "tasks:list"
    assert json.loads(str(tasks["data-convex-args"])) == {"list": "home"}
    assert tasks["data-convex-ts"] == str(convex.ts)
    assert tasks["data-convex-hash"] == value_digest(TASKS)


# The re-render a push asks for


def test_a_render_answers_the_changed_fragments_with_the_requesters_token_never_shared(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    app.config["CONVEX_POLL_SHARE"] = 60.0
    fragments = fragments_of(client.get("/").data)
    headers = same_site_headers(client)
    assert client.post("/_convex/poll", json={"fragments": fragments}, headers=headers).status_code
    calls = convex.batches.call_count
    convex.data["counter:get"] = 3.0
    answer = client.post("/_convex/render", json={"fragments": fragments[1:]}, headers=headers)
    assert answer.status_code == 200
    assert convex.batches.call_count == calls + 1
    assert convex.batched() == ["counter:get"]
    assert convex.batches.calls[-1].request.headers["Authorization"] == f"Bearer {TOKEN}"
    (swap,) = soup(answer.data).select("[hx-swap-oob]")
    assert swap.get_text() == "3.0"
    assert answer.headers["X-Convex-Authenticated"] == "1"


def test_a_render_tells_an_anonymous_requester_so(convex: FakeConvex) -> None:
    client = make_app(user_token=None).test_client()
    fragments = fragments_of(client.get("/").data)
    answer = client.post(
        "/_convex/render", json={"fragments": fragments}, headers=same_site_headers(client)
    )
    assert answer.status_code == 204
    assert answer.headers["X-Convex-Authenticated"] == "0"


def test_a_render_needs_the_csrf_token(client: FlaskClient, convex: FakeConvex) -> None:
    fragments = fragments_of(client.get("/").data)
    answer = client.post(
        "/_convex/render", json={"fragments": fragments}, headers={"Origin": "http://localhost"}
    )
    assert answer.status_code == 400


# The token endpoint


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def bare_app(tmp_path: Path, **config: Any) -> tuple[Flask, Convex]:
    """An app with flask-login and "/token" giving the CSRF token, "/login", "/logout"."""
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(TESTING=True, SECRET_KEY="test", CONVEX_URL=URL, **config)
    LoginManager(app).user_loader(User)
    convex = Convex(app)

    @app.get("/token")
    def token() -> str:
        return render_template_string("{{ convex_csrf_token() }}")

    @app.get("/login")
    def login() -> str:
        login_user(User("alice"))
        return "in"

    @app.get("/logout")
    def logout() -> str:
        logout_user()
        return "out"

    return app, convex


def test_the_token_endpoint_answers_the_loaders_token_uncached(client: FlaskClient) -> None:
    answer = client.post("/_convex/token", json={}, headers=same_site_headers(client))
    assert answer.status_code == 200
    assert answer.get_json() == {"token": TOKEN}
    assert answer.headers["Cache-Control"] == "no-store"


def test_force_asks_the_loader_for_a_refreshed_token(tmp_path: Path) -> None:
    app, convex = bare_app(tmp_path)
    calls: list[bool] = []

    @convex.token_loader
    def load(force_refresh: bool = False) -> str:
        calls.append(force_refresh)
        return f"token-{len(calls)}"

    client = app.test_client()
    headers = same_site_headers(client)
    assert client.post("/_convex/token", json={}, headers=headers).get_json() == {
        "token": "token-1"
    }
    answer = client.post("/_convex/token", json={"force": True}, headers=headers)
    assert answer.get_json() == {"token": "token-2"}
    assert calls == [False, True]


def test_the_built_in_issuer_mints_a_fresh_token_each_time_and_none_after_logout(
    tmp_path: Path,
) -> None:
    app, _ = bare_app(tmp_path, CONVEX_AUTH_ISSUER="https://app.test")
    client = app.test_client()
    client.get("/login")
    headers = same_site_headers(client)
    first = client.post("/_convex/token", json={}, headers=headers).get_json()["token"]
    second = client.post("/_convex/token", json={}, headers=headers).get_json()["token"]
    assert isinstance(first, str)
    assert isinstance(second, str)
    assert first != second
    client.get("/logout")
    assert client.post("/_convex/token", json={}, headers=headers).get_json() == {"token": None}


def test_the_token_endpoint_refuses_cross_site_and_tokenless_posts(client: FlaskClient) -> None:
    headers = same_site_headers(client)
    foreign = {**headers, "Origin": "https://evil.example"}
    assert client.post("/_convex/token", json={}, headers=foreign).status_code == 403
    without = {"Origin": "http://localhost"}
    assert client.post("/_convex/token", json={}, headers=without).status_code == 400
    assert client.get("/_convex/token").status_code == 405


# The digest, in Python and in the page's JavaScript

DIGEST_CASES: list[Any] = [
    None,
    True,
    False,
    0.0,
    1.0,
    -2.5,
    5e-324,
    1e-7,
    0.0001,
    1e-5,
    123456789.125,
    1e15,
    1e16,
    1.7976931348623157e308,
    2.0**53 + 2,
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    ConvexInt64(0),
    ConvexInt64(-(2**63)),
    ConvexInt64(2**63 - 1),
    b"",
    b"\x00\xff binary",
    "",
    "plain",
    'quote " backslash \\ newline \n tab \t nul \x00 del \x7f',
    "café ☕ 日本 😀 \u2028",
    {"b": 1.0, "a": [1.0, {"z": None, "y": "é"}], "Z": 1.0, "~": 2.0, "10": 3.0, "9": 4.0},
    [[], {}, [[[ConvexInt64(7)]]], {"nested": {"deeper": [b"x", -0.0, math.nan]}}],
]


def test_python_and_javascript_compute_the_same_digest() -> None:
    encoded = [convex_to_json(value) for value in DIGEST_CASES]
    # The page decodes the pushed JSON, then encodes the value with the client's convexToJson.
    program = """
const vm = require("node:vm");
const fs = require("node:fs");
const context = vm.createContext({ crypto: globalThis.crypto, TextEncoder });
for (const name of ["convex.min.js", "flask-convex.js"]) {
  vm.runInContext(fs.readFileSync(process.argv[1] + "/" + name, "utf8"), context);
}
const cases = JSON.parse(fs.readFileSync(0, "utf8"));
Promise.all(cases.map((json) => context.flaskConvex.digest(
  context.convex.convexToJson(context.convex.jsonToConvex(json))
))).then((digests) => console.log(JSON.stringify(digests)));
"""
    result = subprocess.run(
        ["node", "-e", program, str(STATIC)],
        input=json.dumps(encoded),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == [value_digest(value) for value in encoded]
