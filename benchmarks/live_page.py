"""Requests per second of the example's live page (20 tasks), its bare twin, and a poll.

Run `python -m benchmarks.live_page [--seconds S] [--rounds N] [--worker-class gthread]
[--threads T] [--delay SECONDS] [--profile]` from the repository root (--delay makes
the stub answer that much later, as a deployment some way off). It serves the example
app with gunicorn on loopback against a fixed-answer Convex stub and loads it with wrk
at 16 connections (`apt-get install -y wrk`; this script installs nothing). The
phases run interleaved, in a rotating order, for several rounds; it prints medians:
the live page against the same template rendered from a constant list (target: at
least 0.8x), and an unchanged poll (answered from the polls shared within
CONVEX_POLL_SHARE) against the live page (target: at least 5x).
"One Convex call" is what a poll costs when it has to ask Convex. Since a poll can
be no cheaper than a bare request, poll/bare bounds what poll/live can reach for a
given live/bare. It also prints the stub's CPU use, which shares the cores.

--profile then samples the gunicorn workers with py-spy while wrk loads the live
page, as the issue measured it, and prints each library's share of their CPU,
flask-convex's own included (target: at most 5%).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import httpx
from bs4 import BeautifulSoup
from flask import Blueprint, Flask, render_template
from jinja2 import ChoiceLoader, DictLoader

from example import app as example_app
from flask_convex import api, preload_query

from ._profile import OWN, sampled
from ._stub import stub_thread
from ._wsgi import ROOT, gunicorn

TASKS = [
    {
        "_id": f"k57a{n:02d}",
        "_creationTime": 1.7e12 + n,
        "list": "default",
        "text": f"Task number {n}",
        "done": n % 3 == 0,
    }
    for n in range(20)
]
LIVE_CALL = '{{ live(tasks, "partials/tasks.html") }}'
PLAIN_CALL = '<div>{% with value = tasks %}{% include "partials/tasks.html" %}{% endwith %}</div>'
CONNECTIONS = 16
WORKERS = 2 * (os.cpu_count() or 1) + 1
"""Gunicorn's advice for sync workers: (2 x cores) + 1."""


def create_app() -> Flask:
    """The example app, whose "/" is the live page, plus its twins for comparison.

    /bare renders the example's own index template with the live fragment replaced
    by the same partial over a constant list; /round-trip is the Convex call alone,
    the floor under the live page and the poll.
    """
    app = example_app.create_app({"SECRET_KEY": "benchmark-only"})
    index = (ROOT / "example" / "templates" / "index.html").read_text()
    assert LIVE_CALL in index, "the example's index no longer renders the live list"
    bare = index.replace(LIVE_CALL, PLAIN_CALL)
    app.jinja_env.loader = ChoiceLoader(
        [DictLoader({"bare_index.html": bare}), app.create_global_jinja_loader()]
    )

    # In a blueprint, as the live page is: each url_for and template context costs the same.
    twins = Blueprint("twins", __name__)

    @twins.get("/bare")
    def bare_page() -> str:
        return render_template("bare_index.html", tasks=TASKS)

    @twins.get("/round-trip")
    def round_trip() -> str:
        return str(len(preload_query(api.tasks.list, {"list": "default"}).value))

    app.register_blueprint(twins)
    return app


def wrk_scripts(base: str) -> tuple[str, str]:
    """wrk scripts of a returning visitor (session cookie): loading the live page, and its poll.

    The poll posts the page's unchanged fragments, as flask-convex.js does.
    """
    with httpx.Client(base_url=base) as client:
        page = BeautifulSoup(client.get("/").text, "html.parser")
        csrf = page.select_one('meta[name="convex-csrf-token"]')
        assert csrf is not None, "the page has no CSRF token"
        fragments = [
            {"id": el["id"], "ref": el["data-convex-ref"], "hash": el["data-convex-hash"]}
            for el in page.select("[data-convex-ref]")
        ]
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    visitor = f"wrk.headers['Cookie'] = {json.dumps(cookie)}\n"
    headers = {
        "Content-Type": "application/json",
        "Origin": base,
        "X-CSRF-Token": str(csrf["content"]),
    }
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(json.dumps({'fragments': fragments}))}",
    ]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    return visitor, visitor + "\n".join(lines) + "\n"


def requests_per_second(wrk: str, url: str, seconds: int, script: str | None = None) -> float:
    """Load `url` with wrk (2 threads, 16 connections); every answer must be a success."""
    extra = ["-s", script] if script else []
    command = [wrk, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", *extra, url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"wrk got failed answers from {url}:\n{output}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert found, output
    return float(found.group(1))


def stub_cpu_seconds() -> float:
    """CPU time of this process so far: the stub's, as the main thread only waits."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each phase")
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--worker-class", default="sync", help="gunicorn's -k")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn's --threads")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds Convex takes")
    parser.add_argument(
        "--profile", action="store_true", help="also sample the workers with py-spy"
    )
    options = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit(
            "wrk is not installed; install it first: apt-get install -y wrk (Debian/Ubuntu) "
            "or brew install wrk (macOS)"
        )
    seconds = options.seconds
    rates: dict[str, list[float]] = {}
    stub_cpu: dict[str, list[float]] = {}
    samples: Counter[str] = Counter()
    with (
        # On a thread of this process, which otherwise only waits for wrk: its CPU
        # time is the stub's.
        stub_thread(options.delay, json.dumps(TASKS).encode()) as (_, convex_url),
        gunicorn(
            "benchmarks.live_page:create_app()",
            {"CONVEX_URL": convex_url},
            workers=options.workers,
            worker_class=options.worker_class,
            threads=options.threads,
            ready_path="/bare",
        ) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        base = server.url
        page_script, poll_script = Path(tmp, "page.lua"), Path(tmp, "poll.lua")
        for path, text in zip((page_script, poll_script), wrk_scripts(base), strict=True):
            path.write_text(text)
        phases = {
            "bare": (f"{base}/bare", None),
            "live": (f"{base}/", str(page_script)),
            "poll": (f"{base}/_convex/poll", str(poll_script)),
            "round-trip": (f"{base}/round-trip", str(page_script)),
        }
        # Warm up: every worker renders the page and answers polls.
        requests_per_second(wrk, f"{base}/", 2, str(page_script))
        requests_per_second(wrk, f"{base}/_convex/poll", 2, str(poll_script))
        names = list(phases)
        for round_ in range(options.rounds):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                url, script = phases[name]
                before = stub_cpu_seconds()
                rates.setdefault(name, []).append(requests_per_second(wrk, url, seconds, script))
                stub_cpu.setdefault(name, []).append((stub_cpu_seconds() - before) / seconds)
        if options.profile:
            with sampled(server.pid, subprocesses=True) as samples:
                requests_per_second(wrk, f"{base}/", seconds, str(page_script))
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"gunicorn, {options.workers} {options.worker_class} workers x {options.threads} "
        f"threads; Convex {options.delay * 1000:.0f} ms away; wrk, 2 threads, "
        f"{CONNECTIONS} connections; median of {options.rounds} interleaved {seconds} s runs"
    )
    labels = {
        "bare": "same page, constant list",
        "live": "live page / (20 tasks)",
        "poll": "unchanged poll (204)",
        "round-trip": "one Convex call, no HTML",
    }
    for name, label in labels.items():
        spread = f"{min(rates[name]):.0f}-{max(rates[name]):.0f}"
        cpu = statistics.median(stub_cpu[name]) * 100
        print(f"{label:27} {median[name]:7.0f} req/s ({spread}); stub CPU {cpu:3.0f}%")
    print(f"live / bare: {median['live'] / median['bare']:.2f}x (target >= 0.8x)")
    print(f"poll / live: {median['poll'] / median['live']:.2f}x (target >= 5x)")
    print(f"poll / bare: {median['poll'] / median['bare']:.2f}x (the bound on poll / live x 0.8)")
    if options.profile:
        print_shares(samples)


def print_shares(samples: Counter[str]) -> None:
    """Each library's share of the workers' CPU on the live page, flask-convex's own last."""
    total = sum(samples.values())
    if not total:
        raise SystemExit("py-spy took no samples of the workers")
    print(f"py-spy, the workers serving the live page ({total} samples), by innermost frame:")
    for library, count in samples.most_common(12):
        print(f"  {library:32} {count / total:6.1%}")
    own = samples[OWN] / total
    print(f"flask-convex's own share of the live page: {own:.1%} (target <= 5%)")


if __name__ == "__main__":
    main()
