"""The exceptions flask-convex raises, so callers can tell user errors from outages."""

from __future__ import annotations

from typing import Any

import convex


class ConvexFlaskError(Exception):
    """Base class of every error raised by flask-convex itself."""


class ConvexConfigError(ConvexFlaskError, RuntimeError):
    """The app is not set up right: extension missing or a CONVEX_* key is wrong."""


class ConvexError(convex.ConvexError, ConvexFlaskError):
    """A Convex function threw `ConvexError(data)`; `data` is the decoded value.

    Subclasses the official client's `convex.ConvexError`, so code written against
    it keeps working.
    """

    def __init__(self, message: str, data: Any, log_lines: list[str] | None = None) -> None:
        super().__init__(message, data)
        self.log_lines = log_lines or []


class ConvexFunctionError(ConvexFlaskError):
    """A Convex function failed without `ConvexError` data (a bug, a validator, not found)."""

    def __init__(self, message: str, log_lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log_lines = log_lines or []


class ConvexRequestError(ConvexFlaskError):
    """The deployment refused the request itself (a non-2xx answer)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class ConvexAuthError(ConvexRequestError):
    """The deployment rejected the auth token (HTTP 401): expired, wrong issuer, bad key."""


class ConvexConnectionError(ConvexFlaskError):
    """The deployment could not be reached, or did not answer within CONVEX_TIMEOUT."""


class ConvexOutcomeUnknownError(ConvexConnectionError):
    """A mutation or action was sent but its answer was lost: it may or may not have run.

    Raised for a timeout, a dropped connection or an unreadable answer after the
    request left; retrying blindly may apply the write twice.
    """


class LiveReferenceError(ConvexFlaskError, ValueError):
    """A live fragment's signed reference was tampered with, expired, or signed by another key."""


def status_for(error: Exception) -> int:
    """The HTTP status for a request that failed with `error`: 504 when a write's answer
    was lost, 503 when Convex was unreachable, 502 when it refused the request, 500
    for anything else."""
    if isinstance(error, ConvexOutcomeUnknownError):
        return 504
    if isinstance(error, ConvexConnectionError):
        return 503
    if isinstance(error, ConvexRequestError):
        return 502
    return 500


class ConvexValueError(ConvexFlaskError, ValueError):
    """Arguments Convex cannot hold; the message names the key path, e.g. args['when']."""
