"""The example's paginated history in a real browser: infinite scroll, live pages, no-JS links."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _local import call
from playwright.sync_api import Page, Route, expect

pytest_plugins = ("tests.example_fixtures",)

pytestmark = pytest.mark.e2e

ENTRIES = ".history .task-text"


def numbered(first: int, last: int) -> list[str]:
    """Entry texts from `first` down to `last`, as the history lists them (newest first)."""
    return [f"Entry {n}" for n in range(first, last - 1, -1)]


def seed(example_url: str, count: int) -> None:
    result = call(example_url, "mutation", "history:seed", {"count": count})
    assert result["status"] == "success", result


def scroll_to_more(page: Page, expected: int) -> None:
    """Scroll the load-more control into view and wait for `expected` entries."""
    page.locator(".convex-more").last.scroll_into_view_if_needed()
    page.mouse.wheel(0, 200)
    expect(page.locator(ENTRIES)).to_have_count(expected)


def three_pages(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/history")
    expect(page.locator(ENTRIES)).to_have_count(20)
    scroll_to_more(page, 40)
    scroll_to_more(page, 60)
    expect(page.locator(".convex-page")).to_have_count(3)


def test_scrolling_loads_more_three_times_then_the_list_is_exhausted(
    app_url: str, example_url: str, new_page: Callable[..., Page]
) -> None:
    seed(example_url, 70)
    page = new_page()
    three_pages(page, app_url)
    expect(page.locator(ENTRIES)).to_have_text(numbered(70, 11))
    scroll_to_more(page, 70)
    expect(page.locator(ENTRIES)).to_have_text(numbered(70, 1))
    expect(page.locator(".convex-more")).to_have_attribute("data-convex-status", "Exhausted")
    expect(page.get_by_text("No more items")).to_be_visible()
    expect(page.locator(".convex-more button")).to_have_count(0)


def test_the_list_is_busy_while_more_loads(
    app_url: str, example_url: str, new_page: Callable[..., Page]
) -> None:
    seed(example_url, 30)
    page = new_page()
    held: list[Route] = []
    page.route("**/_convex/more*", lambda route: held.append(route))
    page.goto(f"{app_url}/history")
    page.get_by_role("button", name="Load more").click()
    expect(page.locator(".convex-paginated")).to_have_attribute("aria-busy", "true")
    expect(page.get_by_role("button", name="Load more")).to_be_disabled()
    expect(page.locator(".convex-more")).to_have_attribute("data-convex-status", "LoadingMore")
    held[0].continue_()
    expect(page.locator(ENTRIES)).to_have_count(30)
    expect(page.locator(".convex-paginated")).not_to_have_attribute("aria-busy", "true")


def test_an_insert_at_the_top_grows_page_one_with_nothing_lost_or_repeated(
    app_url: str, example_url: str, new_page: Callable[..., Page], poll_timeout: float
) -> None:
    seed(example_url, 70)
    page = new_page()
    three_pages(page, app_url)
    result = call(example_url, "mutation", "history:add", {"text": "Breaking news"})
    assert result["status"] == "success", result
    expect(page.locator(ENTRIES)).to_have_text(
        ["Breaking news", *numbered(70, 11)], timeout=poll_timeout
    )
    expect(page.locator(".convex-page").first.locator(".task-text")).to_have_count(21)
    scroll_to_more(page, 71)
    expect(page.locator(ENTRIES)).to_have_text(["Breaking news", *numbered(70, 1)])


def test_a_delete_from_page_two_changes_only_page_two(
    app_url: str, example_url: str, new_page: Callable[..., Page]
) -> None:
    seed(example_url, 70)
    page = new_page()
    three_pages(page, app_url)
    pages = page.locator(".convex-page")
    ids = [pages.nth(i).get_attribute("id") for i in range(3)]
    page.get_by_role("button", name="Delete: Entry 45").click()
    expect(page.locator(ENTRIES)).to_have_text([e for e in numbered(70, 11) if e != "Entry 45"])
    expect(pages.nth(1).locator(".task-text")).to_have_count(19)
    assert [pages.nth(i).get_attribute("id") for i in range(3)] == ids


def test_a_server_action_answers_with_the_changed_pages_of_three(
    app_url: str, example_url: str, new_page: Callable[..., Page]
) -> None:
    seed(example_url, 70)
    page = new_page()
    three_pages(page, app_url)
    first_id = page.locator(".convex-page").first.get_attribute("id")
    page.get_by_label("New entry").fill("Written here")
    with page.expect_response(f"{app_url}/history") as answer:
        page.get_by_role("button", name="Add entry").click()
    body = answer.value.text()
    assert body.count('class="convex-live convex-page') == 1
    assert f'id="{first_id}"' in body
    expect(page.locator(ENTRIES)).to_have_text(["Written here", *numbered(70, 11)])


def test_without_javascript_next_and_previous_links_walk_the_pages(
    app_url: str, example_url: str, new_page: Callable[..., Page]
) -> None:
    seed(example_url, 45)
    page = new_page(java_script_enabled=False)
    page.goto(f"{app_url}/history")
    expect(page.locator(ENTRIES)).to_have_text(numbered(45, 26))
    expect(page.get_by_role("link", name="Previous page")).to_have_count(0)
    page.get_by_role("link", name="Next page").click()
    expect(page.locator(ENTRIES)).to_have_text(numbered(25, 6))
    page.get_by_role("link", name="Next page").click()
    expect(page.locator(ENTRIES)).to_have_text(numbered(5, 1))
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    page.get_by_role("link", name="Previous page").click()
    expect(page.locator(ENTRIES)).to_have_text(numbered(25, 6))
    page.get_by_role("link", name="Previous page").click()
    expect(page.locator(ENTRIES)).to_have_text(numbered(45, 26))
    assert page.url == f"{app_url}/history"
