"""CPU per request of the live page, its bare twin, a poll, a push's re-render, a bare POST.

Run `python -m benchmarks.call_cost [--seconds S] [--rounds N] [--profile | --instructions]`
from the repository root. One thread of this process serves benchmarks.live_page's
app (the example's live page of 20 tasks, and /bare, the same template over a
constant list) straight through WSGI, so only the app's CPU is counted, against a
fixed-answer Convex stub in its own process. The phases take turns of ten requests
each, so that all of them see the same load on a shared machine, for several rounds;
it prints the median CPU (time.process_time) per request and:

- what one Convex call adds to a page (live - bare, the median of each round's
  difference, so that both sides of it saw the same load) against a keep-alive
  http.client POST of the same body (target: at most 1.3x), both the POST in a loop
  and the POST made inside the bare page's view (what it adds to the bare page: its
  code runs as cold in the caches there as the client's call does in the live page);
  and in two parts: the page's own work for the call (the live page with the
  client's answer remembered minus the bare page) and the client's call inside the
  page (the rest), which is set against the same call (`Transport.query_batch`)
  repeated in a loop;
- an unchanged poll, which asks Convex (poll sharing off), against the page
  (target: at least 3x cheaper);
- the re-render a push asks for, of one changed fragment (`/_convex/render`),
  against the page (target: at most its cost).

--instructions counts each request's user-space instructions instead, with
valgrind's cachegrind (`apt-get install valgrind`; this script installs nothing),
garbage collection off: deterministic where CPU time on a shared machine is not,
though it sees no system calls and counts each byte of a large copy.

--profile samples the live page with py-spy (in the bench extra; it needs ptrace
permission) and prints each library's share of the CPU, flask-convex's own
included (target: at most 5%). flask-convex's HTTP client (`flask_convex.connections`,
what httpx did before) counts as an HTTP library of its own, as httpx and
http.client do, not as flask-convex's own work.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, render_template
from werkzeug.test import EnvironBuilder

from flask_convex.client import Call
from flask_convex.values import JsonValue, args_key

from ._profile import HTTP_CLIENT, OWN, sampled
from ._stub import stub_process
from .live_page import TASKS, create_app

QUERY = {"path": "tasks:list", "args": {"list": "default"}, "format": "convex_encoded_json"}
BODY = json.dumps({"queries": [QUERY]}, separators=(",", ":")).encode()
"""The body the live page posts to Convex, for the bare POSTs to send as well."""

Request = Callable[[], None]


def wsgi_request(app: Flask, path: str, **request: Any) -> Request:
    """Calls `app` for `path` with a prepared environ and reads the whole answer, as a server."""
    environ = EnvironBuilder(path=path, base_url="http://127.0.0.1:8000", **request).get_environ()
    body = environ["wsgi.input"].read()

    def start_response(status: str, headers: list[tuple[str, str]], *_: object) -> Any:
        if not status.startswith(("200", "204")):
            raise SystemExit(f"{path} answered {status}")
        if any(name == "Set-Cookie" for name, _ in headers):
            # A browser would send the new cookie: re-signing a stale one each time is not a cost.
            raise SystemExit(f"{path} set a cookie: the benchmark sends a stale one")
        return None

    def run() -> None:
        answer = app(dict(environ, **{"wsgi.input": io.BytesIO(body)}), start_response)
        b"".join(answer)
        getattr(answer, "close", lambda: None)()

    return run


def bare_post(convex_url: str, body: bytes) -> Request:
    """The floor: one keep-alive http.client connection posting the page's body to Convex."""
    parts = urlsplit(convex_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
    headers = {"Content-Type": "application/json", "Convex-Client": "bench-0.0.0"}

    def run() -> None:
        connection.request("POST", "/api/query_batch", body=body, headers=headers)
        json.loads(connection.getresponse().read())

    return run


def with_post_page(app: Flask, convex_url: str) -> Flask:
    """`app` with /bare-post: the bare page, whose view first makes the bare POST.

    What that adds to the bare page is the POST's cost inside a page, where the
    page's rendering has left it cold in the caches, as it leaves the client's call.
    """
    post = bare_post(convex_url, BODY)
    # In a blueprint, as the live page and /bare are.
    twin = Blueprint("post_twin", __name__)

    @twin.get("/bare-post")
    def bare_post_page() -> str:
        post()
        return render_template("bare_index.html", tasks=TASKS)

    app.register_blueprint(twin)
    return app


def phases(app: Flask, convex_url: str) -> dict[str, Request]:
    """Each request to measure, keyed by name; the poll comes from a rendered page."""
    client = app.test_client()
    # flask-login marks the new session on the second request, as a browser's second visit.
    page = [client.get("/").text for _ in range(2)][-1]
    fragment = re.search(r'<div id="([^"]+)"[^>]* data-convex-ref="([^"]+)"', page)
    assert fragment, "the live page has no live fragment"
    hashes = re.search(r'data-convex-hash="([^"]+)"', page)
    token = re.search(r'name="convex-csrf-token" content="([^"]+)"', page)
    assert hashes, "the live fragment has no hash"
    assert token, "the page has no CSRF token"
    session = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert session, "the page set no session cookie"
    cookie = f"{session.key}={session.value}"
    shown = {"id": fragment[1], "ref": fragment[2], "hash": hashes[1]}
    # What a push sends: the fragment's hash is not the pushed value's, so it re-renders.
    changed = {**shown, "hash": "0" * len(hashes[1])}
    args: dict[str, JsonValue] = {"list": "default"}
    calls = [Call(convex_url, "tasks:list", args, args_key(args))]
    transport = app.extensions["convex"].transport
    headers = {"Cookie": cookie, "Origin": "http://127.0.0.1:8000", "X-CSRF-Token": token[1]}
    return {
        "bare": wsgi_request(app, "/bare", headers={"Cookie": cookie}),
        "bare-post": wsgi_request(app, "/bare-post", headers={"Cookie": cookie}),
        "live": wsgi_request(app, "/", headers={"Cookie": cookie}),
        "remembered": from_memory(app, wsgi_request(app, "/", headers={"Cookie": cookie})),
        "poll": wsgi_request(
            app, "/_convex/poll", method="POST", json={"fragments": [shown]}, headers=headers
        ),
        "re-render": wsgi_request(
            app, "/_convex/render", method="POST", json={"fragments": [changed]}, headers=headers
        ),
        "query_batch": lambda: transport.query_batch(calls, None),
        "http.client": bare_post(convex_url, BODY),
    }


def from_memory(app: Flask, run: Request) -> Request:
    """`run` with the client's call (`Transport.query_batch`: encoding, HTTP, decoding)
    answered by its first answer, kept; all else the same.

    The live page minus this is what the client's call costs inside a page, to set
    against the same call repeated in a loop (the `query_batch` phase).
    """
    transport = app.extensions["convex"].transport
    ask = transport.query_batch
    answers: list[Any] = []

    def remembered(*call: Any) -> Any:
        if not answers:
            answers.append(ask(*call))
        return answers[0]

    def run_remembered() -> None:
        transport.query_batch = remembered
        try:
            run()
        finally:
            transport.query_batch = ask

    return run_remembered


def cpu_us(run: Request, seconds: float) -> float:
    """Median-free mean CPU microseconds per call of `run` over about `seconds` of wall time."""
    count, started, cpu = 0, time.monotonic(), time.process_time()
    while time.monotonic() - started < seconds:
        for _ in range(20):
            run()
        count += 20
    return (time.process_time() - cpu) / count * 1e6


def in_turns(requests: dict[str, Request], seconds: float, turn: int = 10) -> dict[str, float]:
    """CPU microseconds per call of each request, run in turns of `turn` calls for `seconds`."""
    spent = dict.fromkeys(requests, 0.0)
    count, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        for name, run in requests.items():
            cpu = time.process_time()
            for _ in range(turn):
                run()
            spent[name] += time.process_time() - cpu
        count += turn
    return {name: total / count * 1e6 for name, total in spent.items()}


def profile(run: Request, seconds: float) -> Counter[str]:
    """Samples `run` in a loop with py-spy; the samples per library of the innermost frame."""
    with sampled(os.getpid()) as shares:
        cpu_us(run, seconds)
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds")
    parser.add_argument("--profile", action="store_true", help="py-spy breakdown of the page")
    parser.add_argument("--instructions", action="store_true", help="count with cachegrind")
    parser.add_argument("--repeat", nargs=2, metavar=("PHASE", "N"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.repeat:
        repeat(options.repeat[0], int(options.repeat[1]))
    elif options.instructions:
        count_instructions()
    else:
        measure_cpu(options)


def repeat(name: str, count: int) -> None:
    """Run phase `name` `count` times after a warm-up, garbage collection off: for cachegrind."""
    with stub_process(value=json.dumps(TASKS).encode()) as convex_url:
        app = with_post_page(create_app(), convex_url)
        app.config.update(CONVEX_URL=convex_url, CONVEX_POLL_SHARE=0)
        requests = phases(app, convex_url)
        for run in requests.values():
            for _ in range(30):
                run()
        gc.collect()
        gc.disable()
        for _ in range(count):
            requests[name]()


def count_instructions() -> None:
    """Print each phase's user-space instructions per request and the targets' ratios."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed; install it first: apt-get install valgrind")

    def instructions(name: str, count: int) -> int:
        command = [valgrind, "--tool=cachegrind", "--cache-sim=no"]
        command += ["--cachegrind-out-file=/dev/null", sys.executable, "-m", __spec__.name]
        done = subprocess.run(
            [*command, "--repeat", name, str(count)], capture_output=True, text=True, check=True
        )
        found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
        assert found, done.stderr
        return int(found[1].replace(",", ""))

    def per_request(name: str) -> float:
        # The difference of two counts leaves out start-up and warm-up.
        few, many = instructions(name, 40), instructions(name, 120)
        return (many - few) / 80

    names = ["bare", "bare-post", "live", "remembered", "poll", "re-render", "query_batch"]
    names.append("http.client")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = dict(zip(names, pool.map(per_request, names), strict=True))
    print("user-space instructions per request (cachegrind, garbage collection off):")
    for name in names:
        print(f"  {name:12} {counts[name] / 1e6:7.3f} M")
    added = counts["live"] - counts["bare"]
    print(f"added / http.client POST: {added / counts['http.client']:.2f}x")
    in_page = counts["bare-post"] - counts["bare"]
    print(f"added / the POST inside the bare page ({in_page / 1e3:.0f} K): {added / in_page:.2f}x")
    thousands = {name: count / 1e3 for name, count in counts.items()}
    remembered = thousands["remembered"]
    own, call = remembered - thousands["bare"], thousands["live"] - remembered
    _print_parts(own, call, thousands["query_batch"], thousands["http.client"], " K")
    print(f"live page / poll:         {counts['live'] / counts['poll']:.2f}x")
    print(f"re-render / live page:    {counts['re-render'] / counts['live']:.2f}x")


def measure_cpu(options: argparse.Namespace) -> None:
    """Print CPU per request of each phase and the targets' ratios (see the module's doc)."""
    with stub_process(value=json.dumps(TASKS).encode()) as convex_url:
        app = with_post_page(create_app(), convex_url)
        app.config.update(CONVEX_URL=convex_url, CONVEX_POLL_SHARE=0)
        requests = phases(app, convex_url)
        for run in requests.values():
            cpu_us(run, 0.3)  # warm up: connections, caches, compiled templates
        rounds = [in_turns(requests, options.seconds) for _ in range(options.rounds)]
        shares, pages = {}, ("live", "bare")
        if options.profile:
            shares = {name: profile(requests[name], options.seconds) for name in pages}
    cost = {name: statistics.median(round_[name] for round_ in rounds) for name in requests}
    print(f"CPU per request, one thread, median of {options.rounds} rounds in turns:")
    for name, label in {
        "bare": "same page, constant list",
        "bare-post": "same, its view POSTs first",
        "live": "live page / (20 tasks)",
        "remembered": "live page, answer remembered",
        "poll": "unchanged poll (asks Convex)",
        "re-render": "re-render of one fragment",
        "query_batch": "the client's call, in a loop",
        "http.client": "bare http.client POST",
    }.items():
        print(f"  {label:30} {cost[name]:7.0f} us")
    added = statistics.median(round_["live"] - round_["bare"] for round_ in rounds)
    ratios = sorted((round_["live"] - round_["bare"]) / round_["http.client"] for round_ in rounds)
    print(f"one Convex call adds {added:.0f} us to the page (median of the rounds' differences)")
    print(
        f"added / http.client POST: {added / cost['http.client']:.2f}x (target <= 1.3x; "
        f"rounds {ratios[0]:.2f}-{ratios[-1]:.2f}x)"
    )
    in_page = statistics.median(round_["bare-post"] - round_["bare"] for round_ in rounds)
    print(f"added / the POST inside the bare page ({in_page:.0f} us): {added / in_page:.2f}x")
    _print_parts(
        statistics.median(round_["remembered"] - round_["bare"] for round_ in rounds),
        statistics.median(round_["live"] - round_["remembered"] for round_ in rounds),
        cost["query_batch"],
        cost["http.client"],
        " us",
    )
    print(f"live page / poll:         {cost['live'] / cost['poll']:.2f}x (target >= 3x)")
    print(f"re-render / live page:    {cost['re-render'] / cost['live']:.2f}x (target <= 1x)")
    if shares:
        print("py-spy, CPU per request by the innermost frame's library (us):")
        print(f"  {'':30} {'live':>7} {'bare':>7} {'added':>7}")
        live, bare = (_per_request(shares[name], cost[name]) for name in ("live", "bare"))
        for library in sorted(live, key=lambda name: bare.get(name, 0.0) - live[name])[:12]:
            here, there = live[library], bare.get(library, 0.0)
            print(f"  {library:30} {here:7.0f} {there:7.0f} {here - there:7.0f}")
        own, http = live.get(OWN, 0.0), live.get(HTTP_CLIENT, 0.0)
        print(f"flask-convex's own share of the live page: {own / cost['live']:.1%} (target <= 5%)")
        print(f"its HTTP client's share: {http / cost['live']:.1%}")


def _print_parts(own: float, call: float, loop: float, post: float, unit: str) -> None:
    """The added cost in two: the page's own work for the call, and the client's call in it."""
    print(f"  of it, the page's own work (live page, answer remembered - bare): {own:.0f}{unit}")
    print(
        f"  and the client's call inside the page: {call:.0f}{unit}, {call / loop:.2f}x "
        f"the same call in a loop ({loop:.0f}{unit}), {call / post:.2f}x the POST"
    )


def _per_request(samples: Counter[str], cost_us: float) -> dict[str, float]:
    total = sum(samples.values())
    return {library: count / total * cost_us for library, count in samples.items()}


if __name__ == "__main__":
    main()
