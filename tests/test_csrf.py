"""Cross-site POSTs, CSRF tokens (alone or with Flask-WTF), body limits of actions and polls."""

from __future__ import annotations

import httpx
import pytest
from flask import Flask, render_template_string, request
from flask.testing import FlaskClient
from flask_wtf.csrf import CSRFProtect
from live_pages import make_app, soup
from serving import post_chunked

from benchmarks._wsgi import serve
from flask_convex import server_action
from flask_convex.csrf import is_same_origin_url

SITE = "http://localhost"


@pytest.fixture
def app() -> Flask:
    app = make_app()

    @app.route("/act", methods=["GET", "POST"])
    @server_action
    def act() -> str:
        return "done"

    @app.get("/field")
    def field() -> str:
        return render_template_string("{{ convex_csrf_field() }}")

    return app


def token(client: FlaskClient) -> str:
    return client.get("/token").get_data(as_text=True)


def test_a_same_site_post_with_the_token_in_a_header_or_field_passes(client: FlaskClient) -> None:
    sent = token(client)
    assert client.post("/act", headers={"Origin": SITE, "X-CSRF-Token": sent}).data == b"done"
    assert client.post("/act", headers={"Origin": SITE}, data={"csrf_token": sent}).data == b"done"


@pytest.mark.parametrize("sent", [None, "", "forged"])
def test_a_missing_or_wrong_token_is_refused(client: FlaskClient, sent: str | None) -> None:
    token(client)
    headers = {"Origin": SITE} | ({"X-CSRF-Token": sent} if sent is not None else {})
    answer = client.post("/act", headers=headers)
    assert answer.status_code == 400
    assert b"CSRF token" in answer.data


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost.evil.example"},
        {"Origin": "null"},
        {"Origin": "https://localhost"},
        {"Origin": "http://localhost:8080"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://sub.localhost"},
        {"Sec-Fetch-Site": "cross-site", "Origin": SITE},
    ],
    ids=[
        "other-host",
        "suffix-host",
        "null",
        "https-same-host",
        "other-port",
        "fetch-cross-site",
        "fetch-same-site",
        "fetch-beats-origin",
    ],
)
def test_a_cross_site_post_is_refused_even_with_the_token(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    answer = client.post("/act", headers={"X-CSRF-Token": token(client), **headers})
    assert answer.status_code == 403
    assert b"Cross-site" in answer.data


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": SITE},
        {"Origin": "HTTP://LOCALHOST:80"},
        {"Sec-Fetch-Site": "same-origin"},
        # A proxy ending TLS shows the app http://; the browser knows it was its own origin.
        {"Sec-Fetch-Site": "same-origin", "Origin": "https://localhost"},
        {},
    ],
    ids=["origin", "origin-spelled-out", "fetch-site", "fetch-site-behind-proxy", "no-browser"],
)
def test_a_same_origin_post_passes(client: FlaskClient, headers: dict[str, str]) -> None:
    answer = client.post("/act", headers={"X-CSRF-Token": token(client), **headers})
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("listed", "origin", "allowed"),
    [
        ("admin.example:8443", "https://admin.example:8443", True),
        ("admin.example:8443", "http://admin.example:8443", True),
        ("admin.example", "https://admin.example:8443", False),
        ("https://admin.example", "https://admin.example:443", True),
        ("https://admin.example", "http://admin.example", False),
    ],
)
def test_listed_origins_may_post(
    app: Flask, client: FlaskClient, listed: str, origin: str, allowed: bool
) -> None:
    app.config["CONVEX_ACTION_ALLOWED_ORIGINS"] = [listed]
    headers = {"Origin": origin, "Sec-Fetch-Site": "cross-site", "X-CSRF-Token": token(client)}
    assert client.post("/act", headers=headers).status_code == (200 if allowed else 403)


def test_a_body_over_the_limit_is_refused_before_the_view(app: Flask, client: FlaskClient) -> None:
    app.config["CONVEX_ACTION_MAX_BODY"] = 100
    headers = {"Origin": SITE, "X-CSRF-Token": token(client)}
    answer = client.post("/act", headers=headers, data={"text": "x" * 200})
    assert answer.status_code == 413
    assert b"CONVEX_ACTION_MAX_BODY" in answer.data
    poll = client.post("/_convex/poll", headers=headers, json={"fragments": [], "pad": "x" * 200})
    assert poll.status_code == 413


def test_a_chunked_body_over_the_limit_is_refused_before_the_view(app: Flask) -> None:
    app.config["CONVEX_ACTION_MAX_BODY"] = 10_000
    seen: list[int] = []

    @app.post("/record")
    @server_action
    def record() -> str:
        seen.append(len(request.form["text"]))
        return "recorded"

    with serve(app) as url:
        # The session cookie and its token, as a page would have them.
        cookie, sent = session_token(url)
        headers = {"Origin": url, "X-CSRF-Token": sent, "Cookie": cookie}
        form = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        assert post_chunked(f"{url}/record", b"text=" + b"x" * 9_000, form) == (200, b"recorded")
        status, body = post_chunked(f"{url}/record", b"text=" + b"x" * 50_000, form)
        assert (status, b"CONVEX_ACTION_MAX_BODY" in body) == (413, True)
        poll = b'{"fragments": [], "pad": "' + b"x" * 50_000 + b'"}'
        json_headers = {**headers, "Content-Type": "application/json"}
        assert post_chunked(f"{url}/_convex/poll", poll, json_headers)[0] == 413
    assert seen == [9_000]


def session_token(url: str) -> tuple[str, str]:
    with httpx.Client() as http:
        answer = http.get(f"{url}/token")
    return answer.headers["Set-Cookie"].split(";")[0], answer.text


def test_an_action_only_answers_post(client: FlaskClient) -> None:
    assert client.get("/act").status_code == 405


def test_the_hidden_field_carries_the_token(client: FlaskClient) -> None:
    sent = token(client)
    field = soup(render_field(client)).select_one("input")
    assert field is not None
    assert (field["type"], field["name"], field["value"]) == ("hidden", "csrf_token", sent)


def render_field(client: FlaskClient) -> str:
    return client.get("/field").get_data(as_text=True)


def test_with_flask_wtf_one_token_serves_both(client: FlaskClient, app: Flask) -> None:
    CSRFProtect(app)
    app.config["WTF_CSRF_FIELD_NAME"] = "wtf_token"
    sent = token(client)
    field = soup(render_field(client)).select_one("input")
    assert field is not None
    assert (field["name"], field["value"]) == ("wtf_token", sent)
    headers = {"Origin": SITE, "Referer": f"{SITE}/"}
    assert client.post("/act", headers=headers, data={"wtf_token": sent}).data == b"done"
    assert client.post("/act", headers={**headers, "X-CSRF-Token": sent}).data == b"done"
    assert client.post("/act", headers=headers).status_code == 400


@pytest.mark.parametrize(
    ("url", "same"),
    [
        ("/tasks", True),
        ("http://localhost/tasks", True),
        ("https://evil.example/", False),
        ("//evil.example/", False),
        ("/\\evil.example", False),
        ("javascript:alert(1)", False),
        ("tasks", False),
        ("https://localhost/tasks", False),
        ("http://localhost:80/tasks", True),
        ("/tasks\r\nSet-Cookie: a=b", False),
        ("/\t/evil.example", False),
        (" //evil.example", False),
        ("http://[::1/", False),
    ],
)
def test_same_origin_urls(app: Flask, url: str, same: bool) -> None:
    with app.test_request_context():
        assert is_same_origin_url(url) is same
