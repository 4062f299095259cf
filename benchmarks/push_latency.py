"""How fast a change reaches open pages, push against polling, and what an idle page costs.

Run `python -m benchmarks.push_latency [--mutations N] [--idle SECONDS]` from the
repository root. It starts a local deployment of `example/convex/`, serves the example
app twice with gunicorn on loopback (CONVEX_LIVE_PUSH on, and off: polling every 2 s) and drives
Debian's headless Chromium. Each mutation is sent to Convex's HTTP API from this
process; the page records when its list changed (a MutationObserver, on the same
clock). Between mutations it waits a random part of the poll interval, so polls are
caught at every phase. It prints, for push and for polling: the latency from a
mutation to the DOM change (median, p95; targets for push: median <= 50 ms, p95 <=
100 ms), the Flask requests per minute of one idle page (target for push: 0), and
how long until 10 pages open on one list all show a change; and how much of push's
latency is its re-render request to the Flask app.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
from joserfc.jwk import RSAKey
from playwright.sync_api import Browser, Page, Request, sync_playwright

from benchmarks._wsgi import Gunicorn, gunicorn
from example import FUNCTIONS_DIR
from example.app import create_app
from flask_convex import current_issuer
from flask_convex.local import LocalDeployment

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
POLL_INTERVAL = 2.0
PAGES = 10

# Records in the page when its number of tasks last changed, in ms since the epoch.
WATCH = """
window.changes = [];
new MutationObserver(() => {
  const count = document.querySelectorAll(".task").length;
  if (window.changes.length === 0 || window.changes.at(-1)[0] !== count) {
    window.changes.push([count, performance.timeOrigin + performance.now()]);
  }
}).observe(document, { childList: true, subtree: true });
"""


def add_task(convex: httpx.Client, text: str) -> tuple[float, float]:
    """Create a task through Convex's HTTP API: when it was sent and when it was answered
    (committed), in ms since the epoch.

    The client is made once and kept: making one costs tens of milliseconds, which
    would be counted as latency.
    """
    body = {"path": "tasks:create", "args": {"list": "default", "text": text}, "format": "json"}
    sent = time.time() * 1000
    convex.post("/api/mutation", json=body).raise_for_status()
    return sent, time.time() * 1000


def wait_a_random_phase() -> None:
    """Sleep part of a poll interval, so mutations meet polls at every phase."""
    time.sleep(random.uniform(0.05, POLL_INTERVAL))


def shown_at(page: Page, count: int) -> float:
    """When the page first showed `count` tasks, waiting for it."""
    page.wait_for_function(f"window.changes.some(c => c[0] === {count})", timeout=30000)
    found: float = page.evaluate(f"window.changes.find(c => c[0] === {count})[1]")
    return found


def open_page(browser: Browser, url: str) -> Page:
    page = browser.new_context().new_page()
    page.add_init_script(WATCH)
    page.goto(url)
    page.wait_for_load_state("networkidle")
    return page


RENDER_REQUESTS = """
performance.getEntriesByType("resource")
  .filter((entry) => entry.name.includes("/_convex/render"))
  .map((entry) => entry.duration)
"""


def latencies(
    browser: Browser, url: str, convex: httpx.Client, mutations: int
) -> dict[str, list[float]]:
    """Mutation-to-DOM latencies, with two of their parts: the mutation's commit (until
    Convex answered it) and the re-render requests a push made to the Flask app."""
    page = open_page(browser, url)
    count = page.locator(".task").count()
    parts: dict[str, list[float]] = {"latency": [], "commit": [], "re-render": []}
    for n in range(mutations):
        wait_a_random_phase()
        page.evaluate("performance.clearResourceTimings()")
        sent, committed = add_task(convex, f"Latency {n}")
        count += 1
        parts["latency"].append(shown_at(page, count) - sent)
        parts["commit"].append(committed - sent)
        parts["re-render"] += page.evaluate(RENDER_REQUESTS)
    page.context.close()
    return parts


def idle_requests_per_minute(browser: Browser, url: str, seconds: float) -> float:
    page = open_page(browser, url)
    page.wait_for_timeout(1000)
    sent: list[str] = []

    def record(request: Request) -> None:
        if request.url.startswith(url) and "/static/" not in request.url:
            sent.append(request.url)

    page.on("request", record)
    page.wait_for_timeout(seconds * 1000)
    page.context.close()
    return len(sent) * 60 / seconds


def fan_out(browser: Browser, url: str, convex: httpx.Client) -> float:
    pages = [open_page(browser, url) for _ in range(PAGES)]
    count = pages[0].locator(".task").count() + 1
    wait_a_random_phase()
    sent, _ = add_task(convex, "Fan out")
    slowest = max(shown_at(page, count) for page in pages) - sent
    for page in pages:
        page.context.close()
    return slowest


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutations", type=int, default=30)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds an idle page is watched")
    options = parser.parse_args()
    key = RSAKey.generate_key(2048).as_pem(private=True).decode()
    config = {"SECRET_KEY": "benchmark", "CONVEX_AUTH_PRIVATE_KEY": key}
    with create_app(config).app_context():
        env = current_issuer().deployment_env()
    with (
        tempfile.TemporaryDirectory() as data,
        LocalDeployment(FUNCTIONS_DIR, data_file=Path(data) / "data.jsonl", env=env) as convex,
    ):

        def app(mode: str) -> AbstractContextManager[Gunicorn]:
            settings = {
                **config,
                "CONVEX_URL": convex.url,
                "CONVEX_POLL_INTERVAL": POLL_INTERVAL,
                "CONVEX_LIVE_PUSH": mode == "push",
            }
            env = {f"FLASK_{name}": json.dumps(value) for name, value in settings.items()}
            # As the README advises for production, in processes of its own.
            return gunicorn(
                "example.app:create_app()", env, workers=2, worker_class="gthread", threads=8
            )

        with (
            app("push") as push_server,
            app("poll") as poll_server,
            sync_playwright() as playwright,
            httpx.Client(base_url=convex.url) as api,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            results = {}
            for mode, url in (("push", push_server.url), ("poll", poll_server.url)):
                parts = latencies(browser, url, api, options.mutations)
                if mode == "push":
                    push_parts = parts
                results[mode] = (
                    statistics.median(parts["latency"]),
                    p95(parts["latency"]),
                    idle_requests_per_minute(browser, url, options.idle),
                    fan_out(browser, url, api),
                )
            browser.close()
    print(f"{options.mutations} mutations each, poll interval {POLL_INTERVAL:g} s")
    print(f"{'':8}{'median':>10}{'p95':>10}{'idle req/min':>14}{f'{PAGES} pages':>12}")
    for mode, (median, high, idle, fan) in results.items():
        print(f"{mode:8}{median:>8.0f}ms{high:>8.0f}ms{idle:>14.1f}{fan:>10.0f}ms")
    push, poll = results["push"], results["poll"]
    print(f"push/poll median latency: {push[0] / poll[0]:.3f}x, p95: {push[1] / poll[1]:.3f}x")
    for part in ("commit", "re-render"):
        values = push_parts[part]
        print(
            f"  push's {part}: median {statistics.median(values):.0f} ms, "
            f"p95 {p95(values):.0f} ms ({len(values)})"
        )


if __name__ == "__main__":
    main()
