"""What flask-convex remembers while one request is handled, and what it adds to the response."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Response

from . import current
from .client import Call, Outcome

MemoKey = tuple[Call, str | None]
"""A query call and the token it ran with."""


class PendingRead(Protocol):
    """A read waiting for the request's next batch (a preload): what to send, and for whom."""

    @property
    def call(self) -> Call: ...

    @property
    def token(self) -> str | None: ...

    def settle(self, outcome: Outcome) -> None:
        """Take the outcome the batch gave this read."""


@dataclass
class RequestState:
    """Per-request token, query memo, pending preloads and timings."""

    token: str | None = None
    token_loaded: bool = False
    memo: dict[MemoKey, Outcome] = field(default_factory=dict)
    pending: list[PendingRead] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)
    read_data: bool = False
    wrote: bool = False
    """A mutation or action succeeded: a later failure must not invite the user to retry."""
    lock: threading.RLock = field(default_factory=threading.RLock)


def request_state() -> RequestState:
    """The state of the current app context, made on first use."""
    app_globals = current.g()
    state: RequestState | None = app_globals.get("_flask_convex")
    if state is None:
        state = app_globals._flask_convex = RequestState()
    return state


def start_request(sender: object, **extra: object) -> None:
    """Give each request fresh state, even one sharing an app context (test clients do)."""
    current.g().pop("_flask_convex", None)


def peek_request_state() -> RequestState | None:
    """The current state if any Convex call was made, without making one."""
    state: RequestState | None = current.g().get("_flask_convex")
    return state


def finish_response(response: Response) -> Response:
    """Mark responses built from Convex data uncacheable and add Server-Timing."""
    state = peek_request_state()
    if state is None:
        return response
    if state.read_data:
        response.headers["Cache-Control"] = "no-store"
    if state.timings and _server_timing_enabled():
        response.headers.extend(
            ("Server-Timing", f'convex{index};desc="{_quote(name)}";dur={ms:.1f}')
            for index, (name, ms) in enumerate(state.timings)
        )
    return response


def _server_timing_enabled() -> bool:
    app = current.app()
    setting: Any = app.config["CONVEX_SERVER_TIMING"]
    return bool(app.debug if setting is None else setting)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
