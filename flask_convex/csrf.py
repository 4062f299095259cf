"""Refuses cross-site and oversized POSTs to server actions and the poll endpoint.

Two checks, as Next.js does for server actions plus a token: the `Origin` header
must name this app's host (or one of CONVEX_ACTION_ALLOWED_ORIGINS), and the
request must carry the CSRF token of the session, in the `X-CSRF-Token` header
(htmx) or the `csrf_token` form field (plain forms). When Flask-WTF's
`CSRFProtect` is set up on the app its token is used, so one token serves both.
"""

from __future__ import annotations

import secrets
from typing import Any, Final
from urllib.parse import urlsplit

from flask import abort, current_app, request, session
from markupsafe import Markup

HEADERS: Final = ("X-CSRF-Token", "X-CSRFToken")
"""Request headers that may carry the token; Flask-WTF reads the same two by default."""

_SESSION_KEY: Final = "_convex_csrf"
_FIELD_KEY: Final = "flask_convex.csrf_field"


def csrf_token() -> str:
    """The current session's CSRF token, made on first use."""
    if _flask_wtf_enabled():
        from flask_wtf.csrf import generate_csrf

        return str(generate_csrf())
    token = session.get(_SESSION_KEY)
    if not isinstance(token, str):
        token = session[_SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_field_name() -> str:
    """The form field plain forms send the token in: Flask-WTF's name when it is set up."""
    if _flask_wtf_enabled():
        return str(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
    return "csrf_token"


def csrf_field() -> Markup:
    """A hidden input carrying the token, for forms that must work without JavaScript."""
    # Pages with a form per row ask for it dozens of times; it is the same all request.
    field: Markup | None = request.environ.get(_FIELD_KEY)
    if field is None:
        field = request.environ[_FIELD_KEY] = Markup(
            '<input type="hidden" name="{}" value="{}">'
        ).format(csrf_field_name(), csrf_token())
    return field


def protect() -> None:
    """Abort unless this is a same-site POST with the session's token and a body within limits.

    413 when the body exceeds CONVEX_ACTION_MAX_BODY, 403 for a foreign Origin,
    400 for a missing or wrong token.
    """
    if request.method != "POST":
        abort(405)
    limit = int(current_app.config["CONVEX_ACTION_MAX_BODY"])
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        abort(413, f"The request body is larger than CONVEX_ACTION_MAX_BODY ({limit} bytes).")
    if not _same_origin():
        abort(403, "Cross-site request refused: the Origin header names another site.")
    if not _valid_token(_sent_token()):
        abort(400, "The CSRF token is missing or invalid; reload the page and try again.")


def is_same_origin_url(url: str) -> bool:
    """Whether `url` is a path on this site or an absolute URL of this host."""
    parts = urlsplit(url)
    if not parts.scheme and not parts.netloc:
        # "//evil" and "/\evil" are read by browsers as another host.
        return url.startswith("/") and not url.startswith(("//", "/\\"))
    return parts.scheme in ("http", "https") and parts.netloc == request.host


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        # Browsers send Origin on every POST; Sec-Fetch-Site covers old ones that do not.
        return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")
    host = urlsplit(origin).netloc
    allowed = current_app.config["CONVEX_ACTION_ALLOWED_ORIGINS"]
    return bool(host) and (host == request.host or host in allowed)


def _sent_token() -> str | None:
    for header in HEADERS:
        if header in request.headers:
            return request.headers[header]
    value: Any = request.form.get(csrf_field_name())
    return value if isinstance(value, str) else None


def _valid_token(sent: str | None) -> bool:
    if not sent:
        return False
    if _flask_wtf_enabled():
        from flask_wtf.csrf import ValidationError, validate_csrf

        try:
            validate_csrf(sent)
        except ValidationError:
            return False
        return True
    expected = session.get(_SESSION_KEY)
    return isinstance(expected, str) and secrets.compare_digest(sent, expected)


def _flask_wtf_enabled() -> bool:
    return "csrf" in current_app.extensions
