"""Push in a real browser: changes arrive over Convex's WebSocket, each user sees their own,
polling takes over while the socket is down, and a fragment never goes back in time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Request, Route, WebSocketRoute, expect

from example.app import create_app
from flask_convex import current_issuer
from flask_convex.local import LocalDeployment

pytest_plugins = ("tests.example_fixtures",)

pytestmark = pytest.mark.e2e

IDLE_SECONDS = 20
"""How long an idle page is watched for requests to the app."""


class Requests:
    """The requests a page sends to the app (not its static files), as "METHOD path"."""

    def __init__(self, page: Page, app_url: str) -> None:
        self.sent: list[str] = []
        self._app_url = app_url
        page.on("request", self._record)

    def _record(self, request: Request) -> None:
        if request.url.startswith(self._app_url) and "/static/" not in request.url:
            self.sent.append(f"{request.method} {urlsplit(request.url).path}")

    def polls(self) -> list[str]:
        return [sent for sent in self.sent if sent.endswith("/_convex/poll")]


def open_pushing(new_page: Callable[..., Page], url: str) -> Page:
    """A page of `url` whose Convex client is connected."""
    page = new_page()
    page.goto(url)
    expect(page.locator("html")).to_have_attribute("data-convex-connection", "push")
    return page


def add_over_http(app_url: str, text: str) -> None:
    httpx.post(f"{app_url}/api/tasks", json={"text": text}).raise_for_status()


def log_in(page: Page, app_url: str, name: str, password: str) -> None:
    page.goto(f"{app_url}/login")
    page.locator("input[name=name]").fill(name)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{app_url}/")
    expect(page.locator("html")).to_have_attribute("data-convex-connection", "push")


def test_changes_made_elsewhere_show_without_a_poll(
    push_url: str, new_page: Callable[..., Page]
) -> None:
    page = open_pushing(new_page, push_url)
    requests = Requests(page, push_url)

    add_over_http(push_url, "Over HTTP")
    expect(page.locator(".task-text")).to_have_text(["Over HTTP"])

    other = open_pushing(new_page, push_url)
    other.get_by_label("New task").fill("From another browser")
    other.get_by_role("button", name="Add task").click()
    expect(page.locator(".task-text")).to_have_text(["Over HTTP", "From another browser"])

    assert requests.polls() == []
    assert set(requests.sent) == {"POST /_convex/render"}


def test_an_idle_page_sends_the_app_nothing(push_url: str, new_page: Callable[..., Page]) -> None:
    add_over_http(push_url, "Quiet")
    page = open_pushing(new_page, push_url)
    expect(page.locator(".task-text")).to_have_text(["Quiet"])
    requests = Requests(page, push_url)
    page.wait_for_timeout(IDLE_SECONDS * 1000)
    assert requests.sent == []
    assert page.locator("html").get_attribute("data-convex-connection") == "push"
