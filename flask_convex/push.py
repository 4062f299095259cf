"""Push: the page's Convex client signals changes, the app re-renders just what changed.

With CONVEX_LIVE_PUSH the page loads the official Convex browser client, which
subscribes to every live fragment's query over Convex's WebSocket. A pushed value
is only a change signal: when its digest differs from the fragment's, the page
posts the changed fragments to `/_convex/render`, which re-renders them with the
requester's own token (never from the poll-share cache). The socket authenticates
with a short-lived JWT the page asks `/_convex/token` for and keeps in memory;
it never appears in HTML. Polling (`live.poll`) takes over while the socket is down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from flask import jsonify
from flask.typing import ResponseReturnValue

from . import current
from .csrf import protect
from .fetch import resolve_token
from .live import answer_fragments, blueprint
from .state import can_refresh, configured_url, get_state

AUTHENTICATED_HEADER = "X-Convex-Authenticated"
"""On render answers: "1" when the requester has a token, "0" when not (e.g. logged out)."""


def check_config(config: Mapping[str, Any]) -> None:
    """Raise ConvexConfigError when CONVEX_PUBLIC_URL is set but not a deployment URL."""
    if config["CONVEX_PUBLIC_URL"]:
        configured_url(config, "CONVEX_PUBLIC_URL")


def public_url() -> str:
    """The deployment URL browsers connect to: CONVEX_PUBLIC_URL, else CONVEX_URL."""
    config = current.app().config
    if config["CONVEX_PUBLIC_URL"]:
        return configured_url(config, "CONVEX_PUBLIC_URL")
    return get_state().url


class PushSettings(NamedTuple):
    """What flask-convex.js needs to subscribe."""

    url: str
    """The deployment URL browsers connect to (`public_url`)."""
    authenticated: bool
    """Whether the page was rendered for a request with a token: only then does
    the page's client ask for one."""


@blueprint.app_template_global("convex_push")
def push_settings() -> PushSettings | None:
    """This request's push settings, or None when CONVEX_LIVE_PUSH is off.

    `convex_scripts()` passes them to convex/scripts.html as `push`; templates of
    an app's own that call `convex_push()` get the same.
    """
    if not current.app().config["CONVEX_LIVE_PUSH"]:
        return None
    return PushSettings(public_url(), resolve_token(None) is not None)


@blueprint.post("/render")
def render() -> ResponseReturnValue:
    """Re-render the posted fragments a push said changed, as the poll does but never shared.

    Body and answers as `live.poll`; the `X-Convex-Authenticated` header tells
    the page whether its socket should still carry a token.
    """
    response = answer_fragments(share=0.0)
    response.headers[AUTHENTICATED_HEADER] = "1" if resolve_token(None) else "0"
    return response


@blueprint.post("/token")
def token() -> ResponseReturnValue:
    """`{"token": jwt-or-null}` for the page's Convex client; `{"force": true}` asks a fresh one.

    Same-origin and CSRF checked as server actions, never cached. The built-in
    issuer mints a new token each time, so the browser never gets one about to
    expire.
    """
    protect()
    body = current.request().get_json(silent=True)
    force = isinstance(body, dict) and body.get("force") is True
    state = get_state()
    loader = state.token_loader()
    if loader is None:
        value = None
    elif loader is state.fallback_loader or (force and can_refresh(loader)):
        value = loader(force_refresh=True)
    else:
        value = loader()
    response = jsonify(token=value)
    response.headers["Cache-Control"] = "no-store"
    return response
