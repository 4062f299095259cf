"""Refuses cross-site and oversized POSTs to server actions and the poll endpoint.

Two checks, as Next.js does for server actions plus a token: the request must
come from this app's own origin (scheme, host and port), as the browser's
`Sec-Fetch-Site` says or else the `Origin` header names, or from one of
CONVEX_ACTION_ALLOWED_ORIGINS; and it must carry the CSRF token of the session,
in the `X-CSRF-Token` header (htmx) or the `csrf_token` form field (plain forms).
When Flask-WTF's `CSRFProtect` is set up on the app its token is used, so one
token serves both. Behind a proxy that terminates TLS, let the app see the
browser's scheme and host (werkzeug's `ProxyFix`).
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Final
from urllib.parse import urlsplit

from flask import abort
from markupsafe import Markup, escape
from werkzeug.wsgi import LimitedStream

from . import current

HEADERS: Final = ("X-CSRF-Token", "X-CSRFToken")
"""Request headers that may carry the token; Flask-WTF reads the same two by default."""

_SESSION_KEY: Final = "_convex_csrf"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# Browsers drop tabs and newlines inside URLs and spaces around them: "/\t/evil" is "//evil".
_UNSAFE_IN_URL: Final = re.compile(r"[\x00-\x1f\x7f]|^\s|\s$")
_FIELD_KEY: Final = "flask_convex.csrf_field"


def csrf_token() -> str:
    """The current session's CSRF token, made on first use."""
    if _flask_wtf_enabled():
        from flask_wtf.csrf import generate_csrf

        return str(generate_csrf())
    session = current.session()
    token = session.get(_SESSION_KEY)
    if not isinstance(token, str):
        token = session[_SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_field_name() -> str:
    """The form field plain forms send the token in: Flask-WTF's name when it is set up."""
    if _flask_wtf_enabled():
        return str(current.app().config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
    return "csrf_token"


def csrf_field() -> Markup:
    """A hidden input carrying the token, for forms that must work without JavaScript."""
    # Pages with a form per row ask for it dozens of times; it is the same all request.
    environ = current.request().environ
    field: Markup | None = environ.get(_FIELD_KEY)
    if field is None:
        name, token = escape(csrf_field_name()), escape(csrf_token())
        field = environ[_FIELD_KEY] = Markup(  # noqa: S704 - of escaped parts
            f'<input type="hidden" name="{name}" value="{token}">'
        )
    return field


def protect() -> None:
    """Abort unless this is a same-site POST with the session's token and a body within limits.

    413 when the body exceeds CONVEX_ACTION_MAX_BODY (chunked bodies too, read
    before the view runs), 403 for a foreign origin, 400 for a missing or wrong token.
    """
    request = current.request()
    if request.method != "POST":
        abort(405)
    limit = int(current.app().config["CONVEX_ACTION_MAX_BODY"])
    limit_body(limit, setting="CONVEX_ACTION_MAX_BODY")
    if not _same_origin():
        abort(403, "Cross-site request refused: the request comes from another site.")
    if not _valid_token(_sent_token()):
        abort(400, "The CSRF token is missing or invalid; reload the page and try again.")


def limit_body(limit: int, *, setting: str | None = None) -> None:
    """Abort with 413 unless the request body fits in `limit` bytes, announced or chunked.

    For views that read a body and are not server actions (which do this
    themselves). A chunked body (no Content-Length) is read now: werkzeug would
    otherwise cut it at the limit without a word, and the view would run on half
    a form. `setting` names the limit in the message.
    """
    request = current.request()
    request.max_content_length = limit
    named = f" ({setting})" if setting else ""
    too_large = f"The request body is larger than {limit} bytes{named}."
    length = request.content_length
    if length is not None:
        if length > limit:
            abort(413, too_large)
        return
    if "wsgi.input_terminated" not in request.environ:
        return  # werkzeug reads nothing of a body of unknown length the server did not end
    body = request.get_data(cache=True)
    stream = request.stream
    cut = isinstance(stream, LimitedStream) and stream.is_exhausted
    if len(body) > limit or (cut and request.environ["wsgi.input"].read(1)):
        abort(413, too_large)


def is_same_origin_url(url: str) -> bool:
    """Whether `url` is a path on this site or a URL of this origin: safe to redirect to."""
    if _UNSAFE_IN_URL.search(url):
        return False
    if url.startswith("/"):
        # "//evil" and "/\\evil" are read by browsers as another host.
        return not url.startswith(("//", "/\\"))
    return _origin(url) == _own_origin()


def _same_origin() -> bool:
    headers = current.request().headers
    origin = headers.get("Origin")
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        # The browser's own verdict, which a proxy rewriting scheme or host cannot blur;
        # "none" is a request the user made, not another site.
        return site in ("same-origin", "none") or (origin is not None and _listed(origin))
    if origin is None:
        # Browsers send Origin on every POST: this is not a browser, and the token decides.
        return True
    return _origin(origin) == _own_origin() or _listed(origin)


def _listed(origin: str) -> bool:
    """Whether CONVEX_ACTION_ALLOWED_ORIGINS lists `origin`: as scheme://host[:port], or
    as host[:port] for either scheme."""
    sent = _origin(origin)
    if sent is None:
        return False
    netloc = urlsplit(origin).netloc.lower()
    return any(
        _origin(entry) == sent if "://" in entry else entry.lower() == netloc
        for entry in current.app().config["CONVEX_ACTION_ALLOWED_ORIGINS"]
    )


def _own_origin() -> tuple[str, str, int]:
    request = current.request()
    own = _origin(f"{request.scheme}://{request.host}")
    assert own is not None
    return own


def _origin(url: str) -> tuple[str, str, int] | None:
    """An http(s) URL's (scheme, host, port), the port implied when left out; else None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return (scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme])


def _sent_token() -> str | None:
    request = current.request()
    for header in HEADERS:
        sent = request.headers.get(header)
        if sent is not None:
            return sent
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
    expected = current.session().get(_SESSION_KEY)
    return isinstance(expected, str) and secrets.compare_digest(sent, expected)


def _flask_wtf_enabled() -> bool:
    return "csrf" in current.app().extensions
