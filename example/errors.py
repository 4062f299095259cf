"""Error pages for a Convex-backed app: when Convex is down, a friendly 503, not a 500.

Copy this module (and `templates/errors/convex.html`) into your app and call
`init_app(app)`. A view whose Convex call fails lets the error through; these
handlers answer it: 503 with Retry-After when the deployment cannot be reached
or timed out, 504 when a write was sent but its answer was lost (it may have
been saved), 502 when Convex refused the request. Requests to the JSON API
(under `/api/`) get `{"success": false, "error": ...}` instead of a page, for
those errors and for refusals such as 400 and 413. Server actions and
live-fragment polls answer Convex failures themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from flask import Flask, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from flask_convex import ConvexConnectionError, ConvexOutcomeUnknownError, ConvexRequestError

API_PREFIX: Final = "/api/"
"""Paths whose errors are answered as JSON."""

RETRY_AFTER: Final = "10"
"""Seconds a browser or client is told to wait before trying again."""


@dataclass(frozen=True, slots=True)
class Trouble:
    """What went wrong, for people: the page's title and message, and the HTTP status."""

    title: str
    message: str
    status: int


UNREACHABLE: Final = Trouble(
    "Tasks are unavailable",
    "The task service cannot be reached right now. Nothing was lost: reload this page in a moment.",
    503,
)
MAYBE_SAVED: Final = Trouble(
    "Your change may have been saved",
    "Your change was sent, but the answer was lost: it may have been saved. "
    "Reload the page to check before trying again.",
    504,
)
REFUSED: Final = Trouble(
    "Tasks could not be loaded",
    "The task service could not answer this request. Reload this page in a moment.",
    502,
)


def init_app(app: Flask) -> None:
    """Register the handlers on `app`."""
    app.register_error_handler(ConvexConnectionError, convex_failed)
    app.register_error_handler(ConvexRequestError, convex_failed)
    app.register_error_handler(HTTPException, refused)


def convex_failed(error: ConvexConnectionError | ConvexRequestError) -> ResponseReturnValue:
    """A friendly page (or JSON) for a view whose Convex call failed."""
    current_app.logger.warning("Convex failed for %s: %s", request.path, error)
    if isinstance(error, ConvexOutcomeUnknownError):
        trouble = MAYBE_SAVED
    elif isinstance(error, ConvexConnectionError):
        trouble = UNREACHABLE
    else:
        trouble = REFUSED
    headers = {"Retry-After": RETRY_AFTER}
    if request.path.startswith(API_PREFIX):
        return jsonify(success=False, error=trouble.message), trouble.status, headers
    return render_template("errors/convex.html", trouble=trouble), trouble.status, headers


def refused(error: HTTPException) -> ResponseReturnValue:
    """JSON for a refused API request (400, 413, ...); pages keep Flask's own error pages."""
    if not request.path.startswith(API_PREFIX):
        return error
    return jsonify(success=False, error=error.description), error.code or 500
