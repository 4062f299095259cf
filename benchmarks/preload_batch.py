"""A page with 4 preloads against a page with 1, when each Convex request takes 20 ms.

Run `python -m benchmarks.preload_batch`. The preloads of a request resolve in one
`query_batch` call, so 4 should cost about what 1 does (target: at most 1.3x);
4 `fetch_query` calls in a row are shown for contrast.
"""

from __future__ import annotations

import statistics
import time

import httpx
from flask import Flask
from flask.testing import FlaskClient

from flask_convex import Convex, api, fetch_query, preload_query

from ._stub import stub_process

DELAY = 0.020
PAGES = 10
ROUNDS = 7


def make_app(url: str) -> Flask:
    """Three views rendering the same kind of data in different ways."""
    app = Flask(__name__)
    app.config["CONVEX_URL"] = url
    Convex(app)

    @app.get("/one-preload")
    def one_preload() -> dict[str, object]:
        return {"tasks": preload_query(api.tasks.list).value}

    @app.get("/four-preloads")
    def four_preloads() -> dict[str, object]:
        names = ("tasks", "open", "done", "mine")
        preloads = [preload_query(api.tasks.list, {"filter": name}) for name in names]
        return {name: preloaded.value for name, preloaded in zip(names, preloads, strict=True)}

    @app.get("/four-fetches")
    def four_fetches() -> dict[str, object]:
        names = ("tasks", "open", "done", "mine")
        return {name: fetch_query(api.tasks.list, {"filter": name}) for name in names}

    return app


def per_page_ms(client: FlaskClient, path: str) -> float:
    start = time.perf_counter()
    for _ in range(PAGES):
        assert client.get(path).status_code == 200
    return (time.perf_counter() - start) / PAGES * 1000


def main() -> None:
    with stub_process(DELAY) as url:
        app = make_app(url)
        client = app.test_client()
        paths = ["/one-preload", "/four-preloads", "/four-fetches"]
        samples: dict[str, list[float]] = {path: [] for path in paths}
        for path in paths:
            per_page_ms(client, path)  # warm up the pooled connection
        for round_ in range(ROUNDS):
            for path in paths[round_ % 3 :] + paths[: round_ % 3]:
                samples[path].append(per_page_ms(client, path))
        stats = httpx.get(f"{url}/stats").json()
    one, four, fetches = (statistics.median(samples[path]) for path in paths)
    print(f"Convex answers after {DELAY * 1000:.0f} ms; median per page over {ROUNDS} rounds:")
    print(f"  1 preload        {one:6.1f} ms")
    print(f"  4 preloads       {four:6.1f} ms")
    print(f"  4 fetch_query    {fetches:6.1f} ms  (one request each, for contrast)")
    print(f"4 preloads / 1 preload:      {four / one:.2f}x  (target <= 1.3x)")
    print(f"4 fetch_query / 1 preload:   {fetches / one:.2f}x")
    # Less the connection that asked for the stats.
    print(f"Convex saw {stats['requests']} requests on {stats['connections'] - 1} connection(s)")


if __name__ == "__main__":
    main()
