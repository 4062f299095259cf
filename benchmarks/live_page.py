"""Requests per second of a live page (20 tasks), a bare Flask page, and an unchanged poll.

Run `python -m benchmarks.live_page [seconds]` from the repository root. It serves
`create_app()` with gunicorn on loopback against a fixed-answer Convex stub and
loads it with wrk (`apt-get install -y wrk`; this script installs nothing). It
prints the live page against the same template rendered from a constant list
(target: at least 0.8x) and an unchanged poll against the live page (target: at
least 5x).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from bs4 import BeautifulSoup
from flask import Flask, render_template
from jinja2 import ChoiceLoader, DictLoader

from flask_convex import Convex, api, preload_query

from ._stub import Stub

TASKS = [
    {"_id": f"k57a{n:02d}", "text": f"Task number {n}", "isCompleted": n % 3 == 0}
    for n in range(20)
]
TEMPLATES = {
    "layout.html": """<!doctype html><html><head><title>Tasks</title>
{% block head %}{% endblock %}</head><body><h1>Tasks</h1>{% block tasks %}{% endblock %}
</body></html>""",
    "live.html": """{% extends "layout.html" %}{% from "convex/macros.html" import live %}
{% block head %}{{ convex_scripts() }}{% endblock %}
{% block tasks %}{{ live(tasks, "tasks.html", tag="ul") }}{% endblock %}""",
    "bare.html": """{% extends "layout.html" %}
{% block tasks %}<ul>{% include "tasks.html" %}</ul>{% endblock %}""",
    "tasks.html": """{% for task in value %}
<li id="{{ task._id }}" class="{{ 'done' if task.isCompleted }}">{{ task.text }}</li>
{% endfor %}""",
}
RESULT = json.dumps({"status": "success", "value": TASKS}).encode()
ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2 * (os.cpu_count() or 1) + 1
"""Gunicorn's advice for sync workers: (2 x cores) + 1."""


def create_app() -> Flask:
    """The benchmarked app: /live (preloaded, live), /bare (a constant list), and
    /round-trip (the Convex call alone, the floor under the live page and the poll)."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "benchmark-only"
    app.jinja_env.loader = ChoiceLoader([DictLoader(TEMPLATES), app.create_global_jinja_loader()])
    Convex(app)

    @app.get("/live")
    def live() -> str:
        return render_template("live.html", tasks=preload_query(api.tasks.list, {"list": "home"}))

    @app.get("/bare")
    def bare() -> str:
        return render_template("bare.html", value=TASKS)

    @app.get("/round-trip")
    def round_trip() -> str:
        return str(len(preload_query(api.tasks.list, {"list": "home"}).value))

    return app


class TasksStub(Stub):
    """The Convex stub, answering every query with the 20 tasks."""

    def _answer(self, path: str, body: bytes) -> bytes:
        result = RESULT
        if path.endswith("/api/query_batch"):
            count = len(json.loads(body)["queries"])
            return b'{"results":[' + b",".join([result] * count) + b"]}"
        return result


@contextmanager
def stub() -> Iterator[str]:
    """Serve the stub from a thread of this process, which is otherwise idle."""
    server = TasksStub()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


@contextmanager
def gunicorn(convex_url: str) -> Iterator[str]:
    """Serve create_app() with sync workers; yields the base URL once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gunicorn", "-w", str(WORKERS), "-b", f"127.0.0.1:{port}"]
    child = subprocess.Popen(
        [*command, "--log-level", "warning", "benchmarks.live_page:create_app()"],
        cwd=ROOT,
        env={**os.environ, "CONVEX_URL": convex_url},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/bare").raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        child.terminate()
        child.wait(timeout=10)


def wrk_scripts(base: str) -> tuple[str, str]:
    """wrk scripts of a returning visitor (session cookie): loading /live, and its poll.

    The poll posts the page's unchanged fragments, as flask-convex.js does.
    """
    with httpx.Client(base_url=base) as client:
        page = BeautifulSoup(client.get("/live").text, "html.parser")
        script = page.select("script")[-1]
        fragments = [
            {"id": el["id"], "ref": el["data-convex-ref"], "hash": el["data-convex-hash"]}
            for el in page.select("[data-convex-ref]")
        ]
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    visitor = f"wrk.headers['Cookie'] = {json.dumps(cookie)}\n"
    headers = {
        "Content-Type": "application/json",
        "Origin": base,
        "X-CSRF-Token": script["data-csrf-token"],
    }
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(json.dumps({'fragments': fragments}))}",
    ]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    return visitor, visitor + "\n".join(lines) + "\n"


def requests_per_second(wrk: str, url: str, seconds: int, script: str | None = None) -> float:
    """Load `url` with wrk (2 threads, 8 connections); every answer must be a success."""
    extra = ["-s", script] if script else []
    command = [wrk, "-t2", "-c8", f"-d{seconds}s", *extra, url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"wrk got failed answers from {url}:\n{output}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert found, output
    return float(found.group(1))


def main() -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed; install it first: apt-get install -y wrk")
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with stub() as convex_url, gunicorn(convex_url) as base, tempfile.TemporaryDirectory() as tmp:
        page_script, poll_script = Path(tmp, "page.lua"), Path(tmp, "poll.lua")
        for path, text in zip((page_script, poll_script), wrk_scripts(base), strict=True):
            path.write_text(text)
        requests_per_second(wrk, f"{base}/live", 1, str(page_script))  # warm the workers up
        bare = requests_per_second(wrk, f"{base}/bare", seconds)
        live = requests_per_second(wrk, f"{base}/live", seconds, str(page_script))
        poll = requests_per_second(wrk, f"{base}/_convex/poll", seconds, str(poll_script))
        floor = requests_per_second(wrk, f"{base}/round-trip", seconds, str(page_script))
    print(f"gunicorn, {WORKERS} sync workers; wrk, 2 threads, 8 connections, {seconds} s each")
    print(f"bare page (constant list): {bare:8.0f} req/s")
    print(f"live page (20 tasks):      {live:8.0f} req/s")
    print(f"unchanged poll (204):      {poll:8.0f} req/s")
    print(f"one Convex call, no HTML:  {floor:8.0f} req/s")
    print(f"live / bare: {live / bare:.2f}x (target >= 0.8x)")
    print(f"poll / live: {poll / live:.2f}x (target >= 5x)")
    print(f"poll / one Convex call: {poll / floor:.2f}x (each poll must make that call)")


if __name__ == "__main__":
    main()
