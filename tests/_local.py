"""Helpers for the tests that talk to the local deployment over raw HTTP."""

from __future__ import annotations

import base64
import struct
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

NpxConvex = Callable[..., subprocess.CompletedProcess[str]]
"""Runs `npx convex ARGS` against one deployment (the `npx_convex` fixture binds it)."""


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
