"""The tags a page's <head> needs: stylesheet, htmx, the Convex client and flask-convex.js.

The package's own tags depend only on the site root, the settings and whether the
request has a token, so they are rendered once for each and kept; only the
session's CSRF token, in a <meta> tag of its own, is written per request. An app's
own convex/scripts.html may read the request (a CSP nonce in `g`, say): it is
rendered for every page.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Final

from jinja2 import Template
from markupsafe import Markup, escape

from . import __about__, current
from .csrf import csrf_token
from .errors import ConvexConfigError
from .live import blueprint
from .push import push_settings
from .state import get_state

CSRF_META: Final = "convex-csrf-token"
"""The name of the <meta> tag whose content is the CSRF token flask-convex.js sends."""

_OWN_SCRIPTS: Final = Path(str(blueprint.template_folder), "convex", "scripts.html")


def scripts() -> Markup:
    """`convex_scripts()`: the session's CSRF token, then the tags for a page's <head>.

    The Convex browser client and its settings come only with CONVEX_LIVE_PUSH.
    With template auto-reload on (debug), or an app's own convex/scripts.html, the
    tags are rendered on every call.
    """
    app = current.app()
    interval = float(app.config["CONVEX_POLL_INTERVAL"])
    if interval <= 0:
        raise ConvexConfigError(f"CONVEX_POLL_INTERVAL must be positive seconds, not {interval}")
    interval_ms = round(interval * 1000)
    token = csrf_token()
    push = push_settings()
    # URLs built for the request depend on its scheme, host and script root; not
    # `request.root_url`, which costs more to build than the rest of the head.
    request = current.request()
    key: Hashable = (request.scheme, request.host, request.root_path, interval_ms, push)
    kept = get_state().head_tags
    tags = kept.get(key)
    if tags is None:
        template = app.jinja_env.get_template("convex/scripts.html")
        own = _is_the_package_own(template)
        context = {"version": __about__.__version__, "interval_ms": interval_ms, "push": push}
        if not own:
            # What an override written for the earlier template still reads.
            context["csrf_token"] = token
        tags = Markup(template.render(context))  # noqa: S704 - an autoescaped template's output
        if own and not app.jinja_env.auto_reload:
            kept.keep(key, tags)
    # First: a script an override runs without `defer` finds the token already parsed.
    # An f-string of escaped parts: `Markup.format` costs more than the rest of the head.
    return Markup(f'<meta name="{CSRF_META}" content="{escape(token)}">\n{tags}')  # noqa: S704


def _is_the_package_own(template: Template) -> bool:
    """Whether `template` is the package's convex/scripts.html, not an app's override."""
    return template.filename is not None and Path(template.filename) == _OWN_SCRIPTS
