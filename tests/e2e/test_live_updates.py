"""Live fragments in a real browser: updated by actions, by polls, and failing one at a time."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, Request, Route, expect

pytest_plugins = ("tests.example_fixtures",)

pytestmark = pytest.mark.e2e

# Makes the page believe it is in a background tab, where flask-convex.js does not
# poll: whatever changes in it came from the action's own answer.
NEVER_POLL = "Object.defineProperty(document, 'hidden', { get: () => true });"


def test_added_task_shows_after_one_request_and_in_another_page_within_a_poll(
    app_url: str, new_page: Callable[..., Page], poll_timeout: float
) -> None:
    page_a, page_b = new_page(), new_page()
    page_a.add_init_script(NEVER_POLL)
    page_a.goto(app_url)
    page_b.goto(app_url)
    sent: list[str] = []

    def count(request: Request) -> None:
        if request.url.startswith(app_url) and "/static/" not in request.url:
            sent.append(f"{request.method} {request.url}")

    page_a.on("request", count)
    page_a.get_by_label("New task").fill("Buy milk")
    page_a.get_by_role("button", name="Add task").click()

    expect(page_a.locator(".task-text")).to_have_text(["Buy milk"])
    expect(page_a.get_by_label("New task")).to_have_value("")
    page_a.wait_for_load_state("networkidle")
    assert sent == [f"POST {app_url}/tasks"]
    expect(page_b.locator(".task-text")).to_have_text(["Buy milk"], timeout=poll_timeout)


def test_toggle_and_delete_update_every_page(
    app_url: str, new_page: Callable[..., Page], poll_timeout: float
) -> None:
    page_a, page_b = new_page(), new_page()
    httpx.post(f"{app_url}/api/tasks", json={"text": "Pay rent"}).raise_for_status()
    page_a.goto(app_url)
    page_b.goto(app_url)

    page_a.get_by_role("button", name="Mark done: Pay rent").click()
    expect(page_a.locator(".task.done .task-text")).to_have_text(["Pay rent"])
    expect(page_b.locator(".task.done .task-text")).to_have_text(["Pay rent"], timeout=poll_timeout)

    page_b.get_by_role("button", name="Delete: Pay rent").click()
    expect(page_b.locator(".task")).to_have_count(0)
    expect(page_a.locator(".task")).to_have_count(0, timeout=poll_timeout)


def test_a_failing_query_shows_an_error_while_other_fragments_keep_updating(
    app_url: str, new_page: Callable[..., Page], poll_timeout: float
) -> None:
    page = new_page()
    page.goto(f"{app_url}/e2e/fragments")
    expect(page.locator("#failing")).to_contain_text("could not be loaded")

    httpx.post(f"{app_url}/api/tasks", json={"text": "Still live"}).raise_for_status()

    expect(page.locator("#default .task-text")).to_have_text(["Still live"], timeout=poll_timeout)
    expect(page.locator("#failing")).to_contain_text("could not be loaded")
    expect(page.locator("#other .empty")).to_be_visible()


def test_a_tampered_reference_shows_an_error_while_other_fragments_keep_updating(
    app_url: str, new_page: Callable[..., Page], poll_timeout: float
) -> None:
    page = new_page()
    page.goto(f"{app_url}/e2e/fragments")
    page.locator("#other [data-convex-ref]").evaluate(
        "element => element.setAttribute('data-convex-ref', 'tampered.reference')"
    )

    httpx.post(f"{app_url}/api/tasks", json={"text": "Still live"}).raise_for_status()

    expect(page.locator("#default .task-text")).to_have_text(["Still live"], timeout=poll_timeout)
    expect(page.locator("#other")).to_contain_text("out of date")
    expect(page.locator("#other [data-convex-ref]")).to_have_count(0)


def test_while_convex_is_unreachable_fragments_go_stale_polls_back_off_then_recover(
    app_url: str, new_page: Callable[..., Page], poll_interval: float, poll_timeout: float
) -> None:
    page = new_page()
    page.goto(app_url)
    failed: list[float] = []

    def unreachable(route: Route) -> None:
        failed.append(time.monotonic())
        route.fulfill(status=503, headers={"Retry-After": "5"}, body="")

    page.route("**/_convex/poll", unreachable)
    live = page.locator("[data-convex-ref]")
    expect(live).to_have_attribute("data-convex-stale", "", timeout=poll_timeout)
    expect(page.locator(".empty")).to_be_visible()
    deadline = time.monotonic() + 2 * poll_timeout / 1000
    while len(failed) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(failed) == 2
    assert failed[1] - failed[0] >= 1.5 * poll_interval

    httpx.post(f"{app_url}/api/tasks", json={"text": "Back online"}).raise_for_status()
    page.unroute("**/_convex/poll")
    recovery = 4 * poll_interval * 1000 + poll_timeout
    expect(page.locator(".task-text")).to_have_text(["Back online"], timeout=recovery)
    expect(live).not_to_have_attribute("data-convex-stale", "")
