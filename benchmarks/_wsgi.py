"""A WSGI app on a real HTTP server: in a thread (for tests and benchmarks), or under gunicorn."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
"""The repository root, where gunicorn imports apps from."""


@contextmanager
def serve(app: Callable[..., Any]) -> Iterator[str]:
    """Serve a WSGI app on a free port in a thread, giving its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


class Gunicorn(NamedTuple):
    """A running gunicorn: the base URL it serves, and its master's process id."""

    url: str
    pid: int


@contextmanager
def gunicorn(
    app: str,
    env: Mapping[str, str],
    *,
    workers: int,
    worker_class: str,
    threads: int,
    ready_path: str = "/",
) -> Iterator[Gunicorn]:
    """Serve `app` ("module:factory()") with gunicorn in its own process, as in production.

    `env` is added to the environment; yields a `Gunicorn` once `ready_path` answers.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", worker_class]
    command += ["--threads", str(threads), "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    child = subprocess.Popen([*command, app], cwd=ROOT, env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}{ready_path}").raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.2)
        yield Gunicorn(base, child.pid)
    finally:
        child.terminate()
        child.wait(timeout=10)
