"""Paginated lists on the example's local deployment: pages, load more, pins, links, actions."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from bs4 import BeautifulSoup, Tag
from flask import Flask, render_template_string
from flask.testing import FlaskClient

from example.app import create_app
from flask_convex import (
    api,
    fetch_mutation,
    fetch_query,
    paginated,
    preload_paginated_query,
    preload_query,
)
from flask_convex.fetch import prepare
from flask_convex.live import LiveRef, serializer
from flask_convex.paginated import CURSOR_SALT
from flask_convex.values import args_key

pytest_plugins = ("tests.example_fixtures",)

pytestmark = pytest.mark.integration

HTMX = {"HX-Request": "true", "Origin": "http://localhost"}


@pytest.fixture
def example_app(example_config: dict[str, Any], example_url: str) -> Flask:
    return create_app({**example_config, "CONVEX_URL": example_url})


@pytest.fixture
def client(example_app: Flask) -> FlaskClient:
    return example_app.test_client()


@pytest.fixture
def seeded(example_app: Flask) -> None:
    """Entries 1..45; the history lists them newest first."""
    with example_app.test_request_context():
        fetch_mutation(api.history.seed, {"count": 45})


def entries(html: str | Tag) -> list[str]:
    page = html if isinstance(html, Tag) else BeautifulSoup(html, "html.parser")
    return [span.get_text() for span in page.select(".task-text")]


def pages_of(html: str) -> list[Tag]:
    return BeautifulSoup(html, "html.parser").select(".convex-page")


def numbered(first: int, last: int) -> list[str]:
    return [f"Entry {n}" for n in range(first, last - 1, -1)]


def load_more(client: FlaskClient, html: str) -> str:
    button = BeautifulSoup(html, "html.parser").select(".convex-more button[data-convex-more]")[-1]
    answer = client.get(button["hx-get"], headers=HTMX)
    assert answer.status_code == 200, answer.text
    return answer.text


def poll(client: FlaskClient, pages: list[Tag]) -> str:
    fragments = [
        {"id": p["id"], "ref": p["data-convex-ref"], "hash": p["data-convex-hash"]} for p in pages
    ]
    token = re.search(r'name="convex-csrf-token" content="([^"]+)"', client.get("/history").text)
    assert token
    answer = client.post(
        "/_convex/poll",
        json={"fragments": fragments},
        headers={"X-CSRF-Token": token.group(1), "Origin": "http://localhost"},
    )
    return answer.text if answer.status_code == 200 else ""


@pytest.mark.usefixtures("seeded")
def test_the_first_page_is_rendered_on_the_server_with_its_end_pinned(
    client: FlaskClient, example_app: Flask
) -> None:
    html = client.get("/history").text
    assert entries(html) == numbered(45, 26)
    (page,) = pages_of(html)
    with example_app.app_context():
        ref = LiveRef.load(page["data-convex-ref"])
    opts = ref.args["paginationOpts"]
    assert (opts["numItems"], opts["cursor"]) == (20, None)
    assert isinstance(opts["endCursor"], str)
    control = BeautifulSoup(html, "html.parser").select_one(".convex-more")
    assert control is not None
    assert control["data-convex-status"] == "CanLoadMore"


@pytest.mark.usefixtures("seeded")
def test_load_more_appends_pages_until_exhausted(client: FlaskClient) -> None:
    html = client.get("/history").text
    second = load_more(client, html)
    assert entries(second) == numbered(25, 6)
    third = load_more(client, second)
    assert entries(third) == numbered(5, 1)
    soup = BeautifulSoup(third, "html.parser")
    assert soup.select_one(".convex-more")["data-convex-status"] == "Exhausted"  # type: ignore[index]
    assert soup.select(".convex-more button") == []


def test_an_empty_history_is_exhausted_at_once(client: FlaskClient) -> None:
    soup = BeautifulSoup(client.get("/history").text, "html.parser")
    assert soup.select_one(".convex-more")["data-convex-status"] == "Exhausted"  # type: ignore[index]


@pytest.mark.usefixtures("seeded")
def test_an_insert_grows_only_the_first_page_and_a_delete_changes_only_its_page(
    client: FlaskClient, example_app: Flask
) -> None:
    html = client.get("/history").text
    second = load_more(client, html)
    pages = pages_of(html) + pages_of(second)
    with example_app.test_request_context():
        fetch_mutation(api.history.add, {"text": "Newest"})
    swaps = pages_of(poll(client, pages))
    assert [swap["id"] for swap in swaps] == [pages[0]["id"]]
    assert entries(swaps[0]) == ["Newest", *numbered(45, 26)]
    with example_app.test_request_context():
        page = fetch_query(api.history.list, {"paginationOpts": {"numItems": 30, "cursor": None}})
        victim = next(doc for doc in page["page"] if doc["text"] == "Entry 20")
        fetch_mutation(api.history.remove, {"id": victim["_id"]})
    swaps = pages_of(poll(client, [swaps[0], pages[1]]))
    assert [swap["id"] for swap in swaps] == [pages[1]["id"]]
    assert entries(swaps[0]) == [e for e in numbered(25, 6) if e != "Entry 20"]


@pytest.mark.usefixtures("seeded")
def test_a_server_action_answers_with_every_changed_page(client: FlaskClient) -> None:
    html = client.get("/history").text
    second = load_more(client, html)
    pages = pages_of(html) + pages_of(second)
    fragments = [
        {"id": p["id"], "ref": p["data-convex-ref"], "hash": p["data-convex-hash"]} for p in pages
    ]
    field = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert field
    answer = client.post(
        "/history",
        data={"text": "Fresh", "csrf_token": field.group(1), "_convex_live": json.dumps(fragments)},
        headers=HTMX,
    )
    assert answer.status_code == 200
    swaps = pages_of(answer.text)
    assert [swap["id"] for swap in swaps] == [pages[0]["id"]]
    assert entries(swaps[0])[0] == "Fresh"


@pytest.mark.usefixtures("seeded")
def test_without_javascript_links_walk_the_pages(client: FlaskClient) -> None:
    first = BeautifulSoup(client.get("/history").text, "html.parser")
    assert first.select('a[rel="prev"]') == []
    next_link = first.select_one('noscript a[rel="next"]')
    assert next_link is not None
    # html.parser keeps <noscript> content as markup, as a browser without scripts does.
    second = BeautifulSoup(client.get(next_link["href"]).text, "html.parser")  # type: ignore[arg-type]
    assert entries(second) == numbered(25, 6)
    third = BeautifulSoup(
        client.get(second.select_one('noscript a[rel="next"]')["href"]).text,  # type: ignore[index, arg-type]
        "html.parser",
    )
    assert entries(third) == numbered(5, 1)
    assert third.select('noscript a[rel="next"]') == []
    back = client.get(third.select_one('a[rel="prev"]')["href"]).text  # type: ignore[index, arg-type]
    assert entries(back) == numbered(25, 6)
    home = BeautifulSoup(back, "html.parser").select_one('a[rel="prev"]')
    assert home is not None
    assert home["href"] == "/history"


def test_a_forged_cursor_link_is_a_400_naming_it(client: FlaskClient) -> None:
    answer = client.get("/history?cursor=forged")
    assert answer.status_code == 400
    assert "cursor parameter is not a page link" in answer.text


@pytest.mark.usefixtures("seeded")
def test_the_preload_shares_the_request_batch(example_app: Flask) -> None:
    with example_app.test_request_context():
        entries_ = preload_paginated_query(api.history.list, initial_num_items=10)
        tasks = preload_query(api.tasks.list, {"list": "default"})
        assert entries_.results[0]["text"] == "Entry 45"
        assert len(entries_.results) == 10
        assert entries_.status == "CanLoadMore"
        assert isinstance(entries_.cursor, str)
        assert tasks.outcome.error is None


@pytest.mark.usefixtures("seeded")
def test_a_page_that_grew_is_split_in_two_at_its_split_cursor(
    client: FlaskClient, example_app: Flask
) -> None:
    html = client.get("/history").text
    (first,) = pages_of(html)
    with example_app.test_request_context():
        for text in ("New 1", "New 2", "New 3"):
            fetch_mutation(api.history.add, {"text": text})
    answer = BeautifulSoup(poll(client, [first]), "html.parser")
    inserted = answer.select_one(f'[hx-swap-oob="beforebegin:#{first["id"]}"]')
    assert inserted is not None
    upper = inserted.select(".convex-page")
    (lower,) = [page for page in answer.select(".convex-page") if page not in upper]
    assert lower["id"] == first["id"]
    assert len(upper) == 1
    assert upper[0]["id"] != first["id"]
    assert entries(upper[0]) + entries(lower) == ["New 3", "New 2", "New 1", *numbered(45, 26)]
    with example_app.app_context():
        upper_opts = LiveRef.load(upper[0]["data-convex-ref"]).args["paginationOpts"]
        lower_opts = LiveRef.load(lower["data-convex-ref"]).args["paginationOpts"]
        first_opts = LiveRef.load(first["data-convex-ref"]).args["paginationOpts"]
    assert upper_opts["cursor"] is None
    assert upper_opts["endCursor"] == lower_opts["cursor"]
    assert lower_opts["endCursor"] == first_opts["endCursor"]


@pytest.mark.usefixtures("seeded")
def test_a_link_to_a_cursor_convex_refuses_shows_the_first_page(
    client: FlaskClient, example_app: Flask
) -> None:
    with example_app.test_request_context():
        call = prepare(api.history.list, {}, None)
        link = serializer(CURSOR_SALT).dumps(
            [paginated._list_digest(call.path, call.args_key), ['["not a key"]']]
        )
    soup = BeautifulSoup(client.get(f"/history?cursor={link}").text, "html.parser")
    assert entries(soup) == numbered(45, 26)
    assert soup.select('a[rel="prev"]') == []


def test_a_link_of_another_list_is_a_400(client: FlaskClient, example_app: Flask) -> None:
    with example_app.test_request_context():
        link = serializer(CURSOR_SALT).dumps(["0123456789ab", ["c"]])
    answer = client.get(f"/history?cursor={link}")
    assert answer.status_code == 400
    assert "not a page link of the list history:list" in answer.text


@pytest.mark.parametrize(
    ("ref", "message"),
    [("forged", "not valid"), (None, "not a load-more control")],
)
def test_load_more_refuses_what_is_not_a_control(
    client: FlaskClient, example_app: Flask, ref: str | None, message: str
) -> None:
    if ref is None:
        with example_app.test_request_context():
            ref = LiveRef("history:list", {}, "partials/history_item.html").sign()
    answer = client.get("/_convex/more", query_string={"ref": ref}, headers=HTMX)
    assert answer.status_code == 400
    assert message in answer.text


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"initial_num_items": 0}, "initial_num_items must be positive"),
        ({"initial_num_items": 2.5}, "initial_num_items must be an int"),
        (
            {"args": {"paginationOpts": {}}, "initial_num_items": 5},
            "adds paginationOpts itself",
        ),
    ],
)
def test_bad_preload_options_are_refused_naming_them(
    example_app: Flask, options: dict[str, Any], error: str
) -> None:
    with example_app.test_request_context(), pytest.raises((TypeError, ValueError), match=error):
        preload_paginated_query(api.history.list, **options)


def test_a_bad_page_size_is_refused_naming_it(example_app: Flask) -> None:
    template = '{% from "convex/macros.html" import paginated %}{{ paginated(e, "x.html", 0) }}'
    with example_app.test_request_context():
        entries_ = preload_paginated_query(api.history.list, initial_num_items=5)
        with pytest.raises(ValueError, match="page_size must be a positive int, not 0"):
            render_template_string(template, e=entries_)


def test_a_wrapper_tag_that_is_no_element_name_is_refused(example_app: Flask) -> None:
    template = (
        '{% from "convex/macros.html" import paginated %}'
        '{{ paginated(e, "x.html", tag="div onclick=alert(1)") }}'
    )
    with example_app.test_request_context():
        entries_ = preload_paginated_query(api.history.list, initial_num_items=5)
        with pytest.raises(ValueError, match="tag must be an HTML element name"):
            render_template_string(template, e=entries_)


def test_revalidate_with_the_other_args_covers_every_page(example_app: Flask) -> None:
    with example_app.test_request_context():
        ref = LiveRef("history:list", {"paginationOpts": {"numItems": 2, "cursor": None}}, "p")
    assert ref.matches("history:list", args_key({}))
    assert ref.matches("history:list", None)
    assert not ref.matches("history:list", args_key({"other": 1}))
    assert not ref.matches("tasks:list", args_key({}))
