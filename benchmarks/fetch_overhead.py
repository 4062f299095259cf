"""Per-call cost of `fetch_query` against a raw pooled httpx POST and the official client.

Run `python -m benchmarks.fetch_overhead`. All three call a local stub deployment
(its own process) with the same body; rounds are interleaved and the medians compared.
Targets: fetch_query at most 1.15x the raw POST, and at least 1.8x faster than
`convex.http_client.ConvexHttpClient`.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import httpx
from convex.http_client import ConvexHttpClient
from flask import Flask

from flask_convex import Convex, api, fetch_query

from ._stub import stub_process

CALLS = 50
ROUNDS = 60

Batch = Callable[[range], None]
"""Runs one call per number, each with that number as its argument."""


def raw_post(url: str) -> Batch:
    """The floor: one pooled httpx client posting the body fetch_query sends."""
    http = httpx.Client()
    headers = {"Content-Type": "application/json", "Convex-Client": "bench-0.1.0"}

    def run(numbers: range) -> None:
        for n in numbers:
            body = {"path": "tasks:list", "args": {"n": float(n)}, "format": "convex_encoded_json"}
            http.post(f"{url}/api/query", content=json.dumps(body), headers=headers).json()

    return run


def flask_convex(url: str) -> Batch:
    """fetch_query in an app context, as in a view; distinct args so the memo never answers."""
    app = Flask(__name__)
    app.config["CONVEX_URL"] = url
    Convex(app)

    def run(numbers: range) -> None:
        with app.app_context():
            for n in numbers:
                fetch_query(api.tasks.list, {"n": n})

    return run


def official(url: str) -> Batch:
    """The official Python HTTP client."""
    client = ConvexHttpClient(url)

    def run(numbers: range) -> None:
        for n in numbers:
            client.query("tasks:list", {"n": float(n)})

    return run


def per_call_us(run: Batch) -> float:
    start = time.perf_counter()
    run(range(CALLS))
    return (time.perf_counter() - start) / CALLS * 1e6


def main() -> None:
    with stub_process() as url:
        contenders = {
            "raw httpx POST": raw_post(url),
            "fetch_query": flask_convex(url),
            "official ConvexHttpClient": official(url),
        }
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for run in contenders.values():
            per_call_us(run)  # warm up: connections, caches, imports
        for round_ in range(ROUNDS):
            names = list(contenders)
            names = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in names:
                samples[name].append(per_call_us(contenders[name]))
        medians = {name: statistics.median(times) for name, times in samples.items()}
        raw, ours, theirs = (medians[name] for name in contenders)
        print(f"{CALLS} calls x {ROUNDS} interleaved rounds, median per call:")
        for name, median in medians.items():
            print(f"  {name:28} {median:8.1f} us  ({median / raw:.2f}x raw POST)")
        print(f"fetch_query / raw POST:          {ours / raw:.2f}x  (target <= 1.15x)")
        print(f"official client / fetch_query:   {theirs / ours:.2f}x  (target >= 1.8x)")


if __name__ == "__main__":
    main()
