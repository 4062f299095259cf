"""Browser tests: the example app on a real HTTP server, driven by Debian's Chromium.

Playwright drives the system browser (`apt-get install chromium`); nothing is
downloaded. Test modules load the example's fixtures with `pytest_plugins`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, render_template_string
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.wrappers import Response

from benchmarks._wsgi import serve
from example.app import create_app
from flask_convex import preload_query
from flask_convex.local import LocalDeployment

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

POLL_INTERVAL = 1.0
"""CONVEX_POLL_INTERVAL of the app under test, in seconds."""

POLL_MARGIN = 2.0
"""Time allowed beyond one poll interval for a poll's round trip and the swap."""

# A test-only page: two live fragments and a lazy one whose query always fails
# (the list argument must be a string).
FRAGMENTS_PAGE = """
{% extends "base.html" %}
{% from "convex/macros.html" import live, lazy %}
{% block content %}
{% set partial = "partials/tasks.html" %}
<section class="card" id="default">{{ live(default, partial) }}</section>
<section class="card" id="other">{{ live(other, partial) }}</section>
<section class="card" id="failing">{{ lazy("tasks:list", {"list": 42}, partial) }}</section>
{% endblock %}
"""


def fragments_page() -> str:
    default = preload_query("tasks:list", {"list": "default"})
    other = preload_query("tasks:list", {"list": "other"})
    return render_template_string(FRAGMENTS_PAGE, default=default, other=other)


def example_app(config: dict[str, Any], deployment: LocalDeployment, *, push: bool) -> Flask:
    """The example app on `deployment`, with the test-only page at /e2e/fragments."""
    app: Flask = create_app(
        {
            **config,
            "CONVEX_URL": deployment.url,
            "CONVEX_POLL_INTERVAL": POLL_INTERVAL,
            "CONVEX_LIVE_PUSH": push,
        }
    )
    app.add_url_rule("/e2e/fragments", view_func=fragments_page)
    return app


@pytest.fixture(scope="session")
def example_server(
    example_config: dict[str, Any], example_deployment: LocalDeployment
) -> Iterator[str]:
    """The example app served over HTTP, polling only (CONVEX_LIVE_PUSH off)."""
    with serve(example_app(example_config, example_deployment, push=False)) as url:
        yield url


@pytest.fixture(scope="session")
def push_server(
    example_config: dict[str, Any], example_deployment: LocalDeployment
) -> Iterator[str]:
    """The example app served over HTTP with push on."""
    with serve(example_app(example_config, example_deployment, push=True)) as url:
        yield url


@pytest.fixture
def app_url(example_server: str, example_url: str) -> str:
    """The served polling example's URL; the deployment's data is wiped for the test."""
    return example_server


@pytest.fixture
def push_url(push_server: str, example_url: str) -> str:
    """The served pushing example's URL; the deployment's data is wiped for the test."""
    return push_server


@pytest.fixture
def poll_interval() -> float:
    """CONVEX_POLL_INTERVAL of the app under test, in seconds."""
    return POLL_INTERVAL


@pytest.fixture
def poll_timeout() -> float:
    """Milliseconds within which every open page shows a change: one poll and a margin."""
    return (POLL_INTERVAL + POLL_MARGIN) * 1000


@pytest.fixture
def other_origin() -> Iterator[Callable[[str], str]]:
    """Serves pages from another origin: give it a page's HTML, get the page's URL."""
    pages: list[str] = []

    def site(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        index = environ["PATH_INFO"].strip("/")
        if not index.isdigit() or int(index) >= len(pages):
            return Response(status=404)(environ, start_response)
        return Response(pages[int(index)], mimetype="text/html")(environ, start_response)

    with serve(site) as url:

        def publish(html: str) -> str:
            pages.append(html)
            return f"{url}/{len(pages) - 1}"

        yield publish


# Module-scoped: while Playwright's sync API is open, its event loop is the running loop
# of the main thread, which breaks the async tests that run after these.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Opens a page in a browser context of its own: another visitor, with its own cookies."""
    contexts = []

    def open_page(**context_options: Any) -> Page:
        context = browser.new_context(**context_options)
        context.set_default_timeout(5000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
