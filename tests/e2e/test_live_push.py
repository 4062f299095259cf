"""Push in a real browser: changes arrive over Convex's WebSocket, each user sees their own,
polling takes over while the socket is down, and a fragment never goes back in time."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Request, Route, WebSocketRoute, expect

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


def test_each_user_sees_only_their_own_tasks_and_gets_no_one_elses_pushes(
    push_url: str, new_page: Callable[..., Page]
) -> None:
    alice, bob = new_page(), new_page()
    log_in(alice, push_url, "alice", "wonderland")
    log_in(bob, push_url, "bob", "builder")
    anonymous = open_pushing(new_page, push_url)
    alice_requests = Requests(alice, push_url)

    bob.get_by_label("New task").fill("Bob's secret")
    bob.get_by_role("button", name="Add task").click()
    add_over_http(push_url, "Anyone's")
    expect(bob.locator(".task-text")).to_have_text(["Bob's secret"])
    expect(anonymous.locator(".task-text")).to_have_text(["Anyone's"])
    alice.get_by_label("New task").fill("Alice's secret")
    alice.get_by_role("button", name="Add task").click()

    expect(alice.locator(".task-text")).to_have_text(["Alice's secret"])
    expect(bob.locator(".task-text")).to_have_text(["Bob's secret"])
    expect(anonymous.locator(".task-text")).to_have_text(["Anyone's"])
    # Alice's socket is hers: the others' changes pushed her nothing to re-render.
    assert alice_requests.sent[0] == "POST /tasks"


def test_after_logout_the_page_follows_the_anonymous_tasks(
    push_url: str, new_page: Callable[..., Page]
) -> None:
    page = new_page()
    log_in(page, push_url, "alice", "wonderland")
    phone = new_page()
    log_in(phone, push_url, "alice", "wonderland")
    elsewhere = page.context.new_page()
    elsewhere.goto(push_url)
    elsewhere.get_by_role("button", name="Log out").click()

    phone.get_by_label("New task").fill("From her phone")
    phone.get_by_role("button", name="Add task").click()
    expect(phone.locator(".task-text")).to_have_text(["From her phone"])
    add_over_http(push_url, "Anyone's")

    expect(page.locator(".task-text")).to_have_text(["Anyone's"])
    add_over_http(push_url, "Anyone's too")
    expect(page.locator(".task-text")).to_have_text(["Anyone's", "Anyone's too"])


def test_a_tab_shown_again_after_logout_elsewhere_turns_anonymous(
    push_url: str, new_page: Callable[..., Page]
) -> None:
    add_over_http(push_url, "Anyone's")
    page = new_page()
    log_in(page, push_url, "alice", "wonderland")
    page.get_by_label("New task").fill("Alice's secret")
    page.get_by_role("button", name="Add task").click()
    expect(page.locator(".task-text")).to_have_text(["Alice's secret"])
    elsewhere = page.context.new_page()
    elsewhere.goto(push_url)
    elsewhere.get_by_role("button", name="Log out").click()

    # Nothing changes in Convex: only the tab coming back finds the session gone.
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")

    expect(page.locator(".task-text")).to_have_text(["Anyone's"])


def test_while_the_socket_is_blocked_polling_takes_over_then_push_returns(
    push_url: str, new_page: Callable[..., Page]
) -> None:
    blocked = True

    def socket(ws: WebSocketRoute) -> None:
        if blocked:
            ws.close()
        else:
            ws.connect_to_server()

    page = new_page()
    page.route_web_socket(re.compile(r"/sync$"), socket)
    page.goto(push_url)
    connection = page.locator("html")
    expect(connection).to_have_attribute("data-convex-connection", "poll")
    requests = Requests(page, push_url)
    add_over_http(push_url, "Polled")
    expect(page.locator(".task-text")).to_have_text(["Polled"])
    assert requests.polls()
    expect(page.locator("[data-convex-ref]")).not_to_have_attribute("data-convex-stale", "")

    blocked = False
    expect(connection).to_have_attribute("data-convex-connection", "push")
    requests.sent.clear()
    add_over_http(push_url, "Pushed")
    expect(page.locator(".task-text")).to_have_text(["Polled", "Pushed"])
    assert requests.polls() == []


def test_a_page_open_across_a_deployment_restart_catches_up(
    push_url: str, new_page: Callable[..., Page], example_deployment: LocalDeployment
) -> None:
    page = open_pushing(new_page, push_url)
    add_over_http(push_url, "Before")
    expect(page.locator(".task-text")).to_have_text(["Before"])

    example_deployment.port = urlsplit(example_deployment.url).port or 0
    example_deployment.stop()
    connection = page.locator("html")
    expect(connection).to_have_attribute("data-convex-connection", "poll")
    expect(page.locator("[data-convex-ref]")).to_have_attribute("data-convex-stale", "")
    example_deployment.start()
    # Made before the page's socket is back: it must not be lost.
    add_over_http(push_url, "During recovery")

    expect(page.locator(".task-text")).to_have_text(["Before", "During recovery"])
    expect(connection).to_have_attribute("data-convex-connection", "push")
    expect(page.locator("[data-convex-ref]")).not_to_have_attribute("data-convex-stale", "")
    add_over_http(push_url, "After")
    expect(page.locator(".task-text")).to_have_text(["Before", "During recovery", "After"])


def test_an_actions_answer_older_than_a_push_does_not_win(
    push_url: str, new_page: Callable[..., Page]
) -> None:
    page = open_pushing(new_page, push_url)
    answers: list[str] = []

    def slow_action(route: Route) -> None:
        answer = route.fetch()
        answers.append(answer.text())
        # A newer change, pushed and re-rendered before the action's answer arrives.
        add_over_http(push_url, "Newer")
        time.sleep(2)
        route.fulfill(response=answer)

    page.route("**/tasks", slow_action)
    with page.expect_response("**/tasks"):
        page.get_by_label("New task").fill("Older")
        page.get_by_role("button", name="Add task").click()
    expect(page.get_by_label("New task")).to_have_value("")

    expect(page.locator(".task-text")).to_have_text(["Older", "Newer"])
    (answer,) = answers
    answered = re.search(r'data-convex-ts="(\d+)"', answer)
    assert answered is not None
    assert "Newer" not in answer
    shown = page.locator("[data-convex-ref]").get_attribute("data-convex-ts")
    assert shown is not None
    assert int(shown) > int(answered.group(1))


# The page believes it is hidden until the test says otherwise.
HIDDEN = """
window.testHidden = true;
Object.defineProperty(document, "hidden", { get: () => window.testHidden });
"""


def test_a_hidden_tab_defers_the_refresh_until_it_is_visible(
    push_url: str, new_page: Callable[..., Page]
) -> None:
    page = new_page()
    page.add_init_script(HIDDEN)
    page.goto(push_url)
    expect(page.locator("html")).to_have_attribute("data-convex-connection", "push")
    requests = Requests(page, push_url)
    add_over_http(push_url, "While hidden")
    visible = open_pushing(new_page, push_url)
    expect(visible.locator(".task-text")).to_have_text(["While hidden"])
    assert requests.sent == []
    expect(page.locator(".task")).to_have_count(0)

    page.evaluate(
        "window.testHidden = false; document.dispatchEvent(new Event('visibilitychange'))"
    )
    expect(page.locator(".task-text")).to_have_text(["While hidden"])
    assert requests.sent == ["POST /_convex/render"]
