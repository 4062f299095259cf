"""CPU per call of `fetch_query` against a bare http.client POST, httpx and the official client.

Run `python -m benchmarks.fetch_overhead`. All four call a local stub deployment
(its own process) with the same body; rounds are interleaved and the medians of
the CPU time (time.process_time) compared. Targets: fetch_query at most 1.3x the
http.client POST, and at least 1.8x cheaper than `convex.http_client.ConvexHttpClient`.
A pooled httpx.Client POST, what flask-convex used to send with, is shown for contrast.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from convex.http_client import ConvexHttpClient
from flask import Flask

from flask_convex import Convex, api, fetch_query

from ._stub import stub_process

CALLS = 50
ROUNDS = 60

Batch = Callable[[range], None]
"""Runs one call per number, each with that number as its argument."""


def bare_post(url: str) -> Batch:
    """The floor: one keep-alive http.client connection posting the body fetch_query sends."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
    headers = {"Content-Type": "application/json", "Convex-Client": "bench-0.1.0"}

    def run(numbers: range) -> None:
        for n in numbers:
            body = {"path": "tasks:list", "args": {"n": float(n)}, "format": "convex_encoded_json"}
            connection.request("POST", "/api/query", body=json.dumps(body), headers=headers)
            json.loads(connection.getresponse().read())

    return run


def httpx_post(url: str) -> Batch:
    """One pooled httpx client posting the same body."""
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
    start = time.process_time()
    run(range(CALLS))
    return (time.process_time() - start) / CALLS * 1e6


def main() -> None:
    with stub_process() as url:
        contenders = {
            "http.client POST": bare_post(url),
            "fetch_query": flask_convex(url),
            "official ConvexHttpClient": official(url),
            "httpx.Client POST": httpx_post(url),
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
        raw, ours, theirs, _ = (medians[name] for name in contenders)
        print(f"{CALLS} calls x {ROUNDS} interleaved rounds, median CPU per call:")
        for name, median in medians.items():
            print(f"  {name:28} {median:8.1f} us  ({median / raw:.2f}x http.client)")
        print(f"fetch_query / http.client POST:  {ours / raw:.2f}x  (target <= 1.3x)")
        print(f"official client / fetch_query:   {theirs / ours:.2f}x  (target >= 1.8x)")


if __name__ == "__main__":
    main()
