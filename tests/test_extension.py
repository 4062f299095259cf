"""The Convex extension: app-factory setup, configuration, and the pooled HTTP client."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import respx
from flask import Flask

from benchmarks._stub import Stub, stub_thread
from flask_convex import (
    Convex,
    ConvexConfigError,
    ConvexConnectionError,
    api,
    fetch_query,
)
from flask_convex.extension import DEFAULTS
from flask_convex.state import get_state


def make_app(**config: object) -> Flask:
    """A bare Flask app with `config`, the extension not yet set up."""
    app = Flask(__name__)
    app.config.update(config)
    return app


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    """A real local HTTP server answering like Convex, counting connections."""
    with stub_thread() as running:
        yield running


def test_the_app_factory_pattern(convex: Convex) -> None:
    first = make_app(CONVEX_URL="https://one-1.convex.cloud")
    second = make_app(CONVEX_URL="https://two-2.convex.cloud")
    convex.init_app(first)
    convex.init_app(second)
    assert not any(isinstance(value, Flask) for value in vars(convex).values())
    assert first.extensions["convex"].hooks is convex.hooks
    with first.app_context():
        assert get_state().url == "https://one-1.convex.cloud"
    with second.app_context():
        assert get_state().url == "https://two-2.convex.cloud"
    assert (
        first.extensions["convex"].transport.http is not second.extensions["convex"].transport.http
    )


def test_every_setting_gets_its_default_and_the_app_keeps_its_own() -> None:
    app = make_app(CONVEX_URL="https://one-1.convex.cloud", CONVEX_TIMEOUT=3.0)
    Convex(app)
    assert app.config["CONVEX_TIMEOUT"] == 3.0
    for key, default in DEFAULTS.items():
        if key not in ("CONVEX_URL", "CONVEX_TIMEOUT"):
            assert app.config[key] == default


def test_the_url_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEX_URL", "https://from-env-1.convex.cloud/")
    app = make_app()
    Convex(app)
    with app.app_context():
        assert get_state().url == "https://from-env-1.convex.cloud"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("happy-otter-123.convex.cloud", "must be an absolute http:// or https:// URL"),
        ("https://happy-otter-123.convex.site", "ends with .convex.site"),
    ],
)
def test_a_wrong_url_fails_at_setup_naming_the_setting(url: str, problem: str) -> None:
    with pytest.raises(ConvexConfigError, match=f"^CONVEX_URL '{url}'.*{problem}"):
        Convex(make_app(CONVEX_URL=url))


def test_the_url_check_can_be_skipped() -> None:
    app = make_app(CONVEX_URL="http://my-proxy/convex/", CONVEX_SKIP_URL_CHECK=True)
    Convex(app)
    with app.app_context():
        assert get_state().url == "http://my-proxy/convex"


def test_a_missing_url_fails_at_the_first_call_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, convex_api: respx.MockRouter
) -> None:
    monkeypatch.delenv("CONVEX_URL", raising=False)
    app = make_app()
    Convex(app)
    with (
        app.test_request_context(),
        pytest.raises(ConvexConfigError, match=r"^CONVEX_URL is not set"),
    ):
        fetch_query(api.tasks.list)
    assert not convex_api.calls


def test_a_forgotten_init_app_is_explained() -> None:
    with (
        make_app().test_request_context(),
        pytest.raises(ConvexConfigError, match=r"call Convex\(app\) or convex.init_app\(app\)"),
    ):
        fetch_query(api.tasks.list)


def test_a_call_outside_the_app_is_explained() -> None:
    with pytest.raises(ConvexConfigError, match="needs an app context"):
        fetch_query(api.tasks.list)


def test_token_loader_is_a_decorator_returning_the_function(convex: Convex) -> None:
    def load() -> str:
        return "t"

    assert convex.token_loader(load) is load


def test_one_pooled_connection_serves_every_request(stub: tuple[Stub, str]) -> None:
    server, url = stub
    app = make_app(CONVEX_URL=url)
    Convex(app)
    app.add_url_rule("/", view_func=lambda: {"tasks": fetch_query(api.tasks.list)})
    client = app.test_client()
    for _ in range(3):
        assert client.get("/").status_code == 200
    assert (server.requests, server.connections) == (3, 1)


def test_the_timeout_setting_bounds_each_call() -> None:
    with stub_thread(delay=0.5) as (_, url):
        app = make_app(CONVEX_URL=url, CONVEX_TIMEOUT=0.05)
        Convex(app)
        with app.test_request_context(), pytest.raises(ConvexConnectionError, match="in time"):
            fetch_query(api.tasks.list)


def test_the_timeout_setting_bounds_a_whole_call_not_each_read() -> None:
    # A byte every 50 ms keeps each read well within 0.5 s; the whole answer takes seconds.
    with stub_thread(trickle=0.05) as (_, url):
        app = make_app(CONVEX_URL=url, CONVEX_TIMEOUT=0.5)
        Convex(app)
        with app.test_request_context(), pytest.raises(ConvexConnectionError, match="in time"):
            fetch_query(api.tasks.list)


def test_the_pooled_client_is_closed_with_the_app() -> None:
    app = make_app(CONVEX_URL="https://one-1.convex.cloud")
    Convex(app)
    http = app.extensions["convex"].transport.http
    assert not http.is_closed
    del app
    gc.collect()
    assert http.is_closed
