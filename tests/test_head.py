"""The <head> tags: what they load and set up, the CSRF token, and when they are rendered again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import respx
from bs4 import Tag
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from jinja2 import ChoiceLoader, DictLoader
from live_pages import URL, FakeConvex, make_app, soup

from flask_convex import ConvexConfigError

TASKS = [{"_id": "t1", "text": "Buy milk"}]


@pytest.fixture
def app() -> Flask:
    return make_app()


@pytest.fixture
def convex() -> Iterator[FakeConvex]:
    with respx.mock(base_url=URL, assert_all_called=False) as router:
        yield FakeConvex(router, data={"tasks:list": TASKS, "counter:get": 2.0})


def head_of(client: FlaskClient, path: str = "/", **request: object) -> Tag:
    head = soup(client.get(path, **request).data).head  # type: ignore[arg-type]
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
    for visitor, token, other in ((alice, *tokens[:2]), (bob, *tokens[1::-1])):
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


def test_an_edited_template_shows_at_once_when_templates_reload(convex: FakeConvex) -> None:
    for reload, expected in ((True, "edited"), (False, "first")):
        app = make_app(TEMPLATES_AUTO_RELOAD=reload)
        mine = {"convex/scripts.html": "<!-- first -->"}
        assert isinstance(app.jinja_env.loader, ChoiceLoader)
        app.jinja_env.loader.loaders.insert(0, DictLoader(mine))
        client = app.test_client()
        assert "first" in client.get("/").text
        mine["convex/scripts.html"] = "<!-- edited -->"
        assert expected in client.get("/").text


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
