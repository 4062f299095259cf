"""The first page of a paginated list against a plain live list of the same 20 items.

Run `python -m benchmarks.paginated`. Both views render the example's history item
partial 20 times from the same `.paginate()` answer of a fixed-answer Convex stub
(its own process): one through `paginated` (a pinned live page and a load-more
control), one through `live` with a partial looping over the page. It prints the
median server time per request of each and their ratio, then the time and bytes of
a load-more request (`/_convex/more`, the next page and a new control).
"""

from __future__ import annotations

import json
import statistics
import time

from bs4 import BeautifulSoup
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from jinja2 import ChoiceLoader, DictLoader

from example import app as example_app
from flask_convex import api, preload_paginated_query, preload_query

from ._stub import stub_process

ITEMS = 20
REQUESTS = 200
ROUNDS = 7
PAGE = {
    "page": [
        {"_id": f"k57h{n:03d}", "_creationTime": 1.7e12 + n, "text": f"Entry {n}"}
        for n in range(ITEMS, 0, -1)
    ],
    "isDone": False,
    "continueCursor": "cursor-after-entry-1",
    "splitCursor": None,
    "pageStatus": None,
}
PAGINATED = (
    '{% from "convex/macros.html" import paginated %}'
    '{{ paginated(entries, "partials/history_item.html", tag="ul") }}'
)
LIVE = '{% from "convex/macros.html" import live %}{{ live(entries, "bench_list.html", tag="ul") }}'
LIST = '{% for item in value.page %}{% include "partials/history_item.html" %}{% endfor %}'


def create_app(url: str) -> Flask:
    """The example app with /paginated and /live, rendering the same first page."""
    app = example_app.create_app({"SECRET_KEY": "benchmark-only", "CONVEX_URL": url})
    app.jinja_env.loader = ChoiceLoader(
        [DictLoader({"bench_list.html": LIST}), app.create_global_jinja_loader()]
    )

    @app.get("/paginated")
    def paginated_page() -> str:
        entries = preload_paginated_query(api.history.list, initial_num_items=ITEMS)
        return render_template_string(PAGINATED, entries=entries)

    @app.get("/live")
    def live_page() -> str:
        entries = preload_query(
            api.history.list, {"paginationOpts": {"numItems": ITEMS, "cursor": None}}
        )
        return render_template_string(LIVE, entries=entries)

    return app


def per_request_ms(client: FlaskClient, path: str) -> float:
    start = time.perf_counter()
    for _ in range(REQUESTS):
        assert client.get(path).status_code == 200
    return (time.perf_counter() - start) / REQUESTS * 1000


def main() -> None:
    with stub_process(value=json.dumps(PAGE).encode()) as url:
        app = create_app(url)
        client = app.test_client()
        first = client.get("/paginated").text
        button = BeautifulSoup(first, "html.parser").select_one("[data-convex-more]")
        assert button is not None, "the first page has no load-more control"
        more = str(button["hx-get"])
        paths = ["/paginated", "/live", more]
        samples: dict[str, list[float]] = {path: [] for path in paths}
        for path in paths:
            per_request_ms(client, path)  # warm up
        for round_ in range(ROUNDS):
            for path in paths[round_ % 3 :] + paths[: round_ % 3]:
                samples[path].append(per_request_ms(client, path))
        sizes = {path: len(client.get(path).data) for path in paths}
    paginated, live, load_more = (statistics.median(samples[path]) for path in paths)
    print(f"Median server time per request over {ROUNDS} rounds of {REQUESTS}, {ITEMS} items:")
    print(f"  paginated first page  {paginated * 1000:6.0f} µs  {sizes['/paginated']:6d} bytes")
    print(f"  plain live list       {live * 1000:6.0f} µs  {sizes['/live']:6d} bytes")
    print(f"  load-more request     {load_more * 1000:6.0f} µs  {sizes[more]:6d} bytes")
    print(f"paginated / live:   {paginated / live:.2f}x")
    print(f"load more / live:   {load_more / live:.2f}x")


if __name__ == "__main__":
    main()
