"""The <head> tags: what they load and set up, the CSRF token, and when they are rendered again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bs4 import Tag
from flask import Flask, g, render_template_string, request
from flask.testing import FlaskClient
from jinja2 import ChoiceLoader, DictLoader
from live_pages import FakeConvex, fake_convex, make_app, soup

from flask_convex import ConvexConfigError

TASKS = [{"_id": "t1", "text": "Buy milk"}]


@pytest.fixture
def app() -> Flask:
    return make_app()


@pytest.fixture
def convex() -> Iterator[FakeConvex]:
    with fake_convex(TASKS) as fake:
        yield fake


def head_of(client: FlaskClient, path: str = "/", **request: Any) -> Tag:
    head = soup(client.get(path, **request).data).head
    assert head is not None
    return head


def csrf_meta(head: Tag) -> str:
    (meta,) = head.select('meta[name="convex-csrf-token"]')
    return str(meta["content"])


def test_convex_scripts_serves_htmx_and_configures_polling_and_csrf(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    app.config["CONVEX_POLL_INTERVAL"] = 0.5
    app.config["CONVEX_LIVE_PUSH"] = False
    head = head_of(client)
    sources = [str(script["src"]) for script in head.select("script")]
    assert [src.split("?")[0] for src in sources] == [
        "/_convex/static/htmx.min.js",
        "/_convex/static/flask-convex.js",
    ]
    for src in sources:
        served = client.get(src)
        assert served.status_code == 200
        assert served.mimetype == "text/javascript"
    assert b"htmx" in client.get(sources[0]).data
    ours = head.select("script")[-1]
    assert ours["data-poll-url"] == "/_convex/poll"
    assert ours["data-poll-interval"] == "500"
    assert csrf_meta(head) == client.get("/token").get_data(as_text=True)
    stylesheet = head.select_one("link[rel=stylesheet]")
    assert stylesheet is not None
    assert client.get(str(stylesheet["href"])).status_code == 200


def test_each_session_gets_its_own_token_and_the_tags_keep_none(
    app: Flask, convex: FakeConvex
) -> None:
    alice, bob = app.test_client(), app.test_client()
    tokens = [csrf_meta(head_of(visitor)) for visitor in (alice, bob, alice)]
    assert tokens[0] == tokens[2] != tokens[1]
    visitors = [(alice, tokens[0], tokens[1]), (bob, tokens[1], tokens[0])]
    for visitor, token, other in visitors:
        for sent, status in ((token, 204), (other, 400)):
            headers = {"Origin": "http://localhost", "X-CSRF-Token": sent}
            answer = visitor.post("/_convex/poll", json={"fragments": []}, headers=headers)
            assert answer.status_code == status
    for tags in app.extensions["convex"].head_tags.values():
        assert all(token not in tags for token in tokens)


def test_the_tags_follow_the_settings_and_the_site_root(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    assert head_of(client).select("script")[-1]["data-poll-interval"] == "2000"
    app.config["CONVEX_POLL_INTERVAL"] = 0.25
    assert head_of(client).select("script")[-1]["data-poll-interval"] == "250"
    app.config["CONVEX_LIVE_PUSH"] = False
    assert not head_of(client).select("script")[-1].has_attr("data-convex-url")
    mounted = head_of(client, environ_overrides={"SCRIPT_NAME": "/shop"})
    assert mounted.select("script")[-1]["data-poll-url"] == "/shop/_convex/poll"
    assert head_of(client).select("script")[-1]["data-poll-url"] == "/_convex/poll"


def test_pages_with_and_without_a_token_each_get_their_own_socket_settings(
    convex: FakeConvex,
) -> None:
    signed_in = {"token": "token-of-alice"}
    app = make_app(user_token=None)
    app.extensions["convex"].hooks.token_loader = lambda: signed_in["token"]
    client = app.test_client()
    assert head_of(client).select("script")[-1].has_attr("data-convex-auth")
    signed_in["token"] = None  # type: ignore[assignment]
    assert not head_of(client).select("script")[-1].has_attr("data-convex-auth")


def with_own_scripts(app: Flask, source: dict[str, str]) -> Flask:
    """`app` with its own convex/scripts.html, read from `source` as it is at each load."""
    loader = app.jinja_env.loader
    assert isinstance(loader, ChoiceLoader)
    loader.loaders = [DictLoader(source), *loader.loaders]
    return app


def test_the_package_tags_are_kept_unless_templates_reload(convex: FakeConvex) -> None:
    for reload in (False, True):
        app = make_app(TEMPLATES_AUTO_RELOAD=reload)
        client = app.test_client()
        pages = [client.get("/").text for _ in range(2)]
        assert pages[0].count("flask-convex.js") == pages[1].count("flask-convex.js") == 1
        assert len(app.extensions["convex"].head_tags) == (0 if reload else 1)


def test_an_apps_own_tags_are_rendered_for_each_request_and_can_read_it_and_the_token(
    convex: FakeConvex,
) -> None:
    app = make_app()
    mine = '<script nonce="{{ g.nonce }}" data-csrf-token="{{ csrf_token }}"></script>'
    with_own_scripts(app, {"convex/scripts.html": mine})
    app.before_request(lambda: setattr(g, "nonce", request.headers["X-Nonce"]))
    client = app.test_client()
    for nonce in ("one", "two"):
        head = head_of(client, headers={"X-Nonce": nonce})
        (script,) = head.select("script")
        assert script["nonce"] == nonce
        assert script["data-csrf-token"] == csrf_meta(head), "as the earlier template had it"
    assert app.extensions["convex"].head_tags == {}


def test_the_tags_kept_are_bounded_whatever_hosts_requests_name(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    for index in range(200):
        head = head_of(client, headers={"Host": f"host-{index}.example"})
        assert head.select("script")[-1]["data-poll-url"] == "/_convex/poll"
    assert 0 < len(app.extensions["convex"].head_tags) <= 64


def test_a_non_positive_poll_interval_is_a_config_error(app: Flask) -> None:
    app.config["CONVEX_POLL_INTERVAL"] = 0
    with app.test_request_context(), pytest.raises(ConvexConfigError, match="POLL_INTERVAL"):
        render_template_string("{{ convex_scripts() }}")
