"""Helpers for the tests that talk to the local deployment over raw HTTP."""

from __future__ import annotations

import base64
import re
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from flask_convex.local import LocalDeployment, install_server

NpxConvex = Callable[..., subprocess.CompletedProcess[str]]
"""Runs `npx convex ARGS` against one deployment (the `npx_convex` fixture binds it)."""


def npx_convex_argv(target: LocalDeployment, *args: str) -> list[str]:
    """The command line of `npx convex ARGS --url URL --admin-key KEY`, with the pinned CLI."""
    main = install_server() / "node_modules" / "convex" / "bin" / "main.js"
    return ["node", str(main), *args, "--url", target.url, "--admin-key", target.admin_key]


def call(
    target: str | httpx.Client,
    route: str,
    path: str,
    args: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    **body: Any,
) -> Any:
    """POSTs `{path, args, **body}` to `/api/<route>`; the JSON reply, which must be a 200.

    `target` is the deployment's URL, or a client whose base URL it is.
    """
    json = {"path": path, "args": args or {}, **body}
    if isinstance(target, httpx.Client):
        response = target.post(f"/api/{route}", json=json, headers=headers)
    else:
        response = httpx.post(f"{target}/api/{route}", json=json, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def int64(value: int) -> dict[str, str]:
    """An int64 in Convex's encoded JSON."""
    return {"$integer": base64.b64encode(struct.pack("<q", value)).decode()}


def decode_ts(ts: str) -> int:
    """A timestamp as the API sends it (base64 of a little-endian u64) as an int."""
    value: int = struct.unpack("<Q", base64.b64decode(ts))[0]
    return value


def eventually(check: Callable[[], bool], what: str = "the condition", timeout: float = 15) -> None:
    """Polls `check` until it holds; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not seen in {timeout} s: {what}"
        time.sleep(0.05)


def streamed_until(
    command: list[str],
    call_again: Callable[[], Any],
    *patterns: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Runs a log-streaming command, calling `call_again()` until its output has every pattern.

    Calls repeat because the stream's first answer, which shows no history, may swallow one.
    """
    with subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        assert process.stdout is not None
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True).start()
        deadline = time.monotonic() + 30
        try:
            while not all(re.search(pattern, "".join(lines)) for pattern in patterns):
                assert time.monotonic() < deadline, "".join(lines)
                call_again()
                time.sleep(0.5)
        finally:
            process.kill()
        return "".join(lines)


def free_port() -> int:
    """A port of 127.0.0.1 free just now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def free_port_and_the_next() -> int:
    """A free port whose next one is free too: a free port's neighbour may well be taken."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
