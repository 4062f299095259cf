"""The `Convex` Flask extension: configuration defaults, and wiring each feature into the app."""

from __future__ import annotations

import os
import weakref
from typing import Any, Final, TypeVar

from flask import Flask, request_started

from . import __about__, auth, head, live, push
from .cli import convex_cli
from .client import Transport
from .connections import ConnectionPool
from .context import finish_response, start_request
from .state import ClaimsLoader, ConvexState, Hooks, TokenLoader, configured_url

DEFAULTS: Final[dict[str, Any]] = {
    # The deployment, e.g. "https://happy-otter-123.convex.cloud". Defaults to the
    # CONVEX_URL environment variable; `flask convex dev` and the pytest plugin set
    # it to the local deployment they start.
    "CONVEX_URL": None,
    # Where the deployment serves HTTP actions (convex/http.ts), for views that link to
    # them: a cloud deployment's ".convex.site" URL. Defaults to the CONVEX_SITE_URL
    # environment variable, which `flask convex dev` sets to the local deployment's.
    "CONVEX_SITE_URL": None,
    # Accept any URL, as the official clients' skipConvexDeploymentUrlCheck.
    "CONVEX_SKIP_URL_CHECK": False,
    # Seconds one Convex call may take in all, connect to last byte.
    "CONVEX_TIMEOUT": 10.0,
    # Add a Server-Timing header naming each Convex call; None means "when debugging".
    "CONVEX_SERVER_TIMING": None,
    # The deployment URL browsers use (their Convex client's WebSocket), when the app
    # reaches Convex at an internal address; None means CONVEX_URL.
    "CONVEX_PUBLIC_URL": None,
    # Keep live fragments current by Convex's pushes to the page's Convex client;
    # False polls only. With push on, polling takes over while the socket is down.
    "CONVEX_LIVE_PUSH": True,
    # Seconds between the polls that keep a page's live fragments current.
    "CONVEX_POLL_INTERVAL": 2.0,
    # Seconds a poll's answer also serves other polls of the same query and token in
    # this process (they learn "unchanged" without asking Convex); 0 turns it off.
    "CONVEX_POLL_SHARE": 1.0,
    # Seconds a signed live reference in a page stays valid.
    "CONVEX_LIVE_MAX_AGE": 24 * 3600,
    # Largest answer of re-rendered live fragments a poll (else 413) or an action
    # (else none; the next poll shows them) sends, in bytes.
    "CONVEX_LIVE_MAX_ANSWER": 4 * 1024 * 1024,
    # Largest request body a server action or poll accepts, in bytes (chunked too).
    "CONVEX_ACTION_MAX_BODY": 1024 * 1024,
    # Other origins whose pages may post to server actions: "https://host[:port]", or
    # "host[:port]" for either scheme as Next.js serverActions.allowedOrigins; the app's
    # own origin (scheme, host and port) is always allowed.
    "CONVEX_ACTION_ALLOWED_ORIGINS": (),
    # The app's convex/ folder, run by the local deployment; None means <app root>/convex.
    "CONVEX_FUNCTIONS_DIR": None,
    # Environment variables for the local deployment's functions (`flask convex local`
    # and `dev`): a dict, as `npx convex env set`; `--env KEY=VALUE` options override it.
    "CONVEX_LOCAL_ENV": None,
    # The typed Python references `flask convex codegen` writes; "" means
    # <app root>/convex_api.py, None turns them off.
    "CONVEX_PYTHON_API": "",
    # The built-in JWT issuer for flask-login users (see flask_convex.auth): its iss
    # claim (the app's public URL); None leaves the issuer off.
    "CONVEX_AUTH_ISSUER": None,
    # The aud claim of minted tokens: the applicationID in convex/auth.config.ts.
    "CONVEX_AUTH_APPLICATION_ID": "flask-convex",
    # Lifetime of minted tokens, in seconds.
    "CONVEX_AUTH_TOKEN_TTL": 3600,
    # The signing key as PEM text, a PEM file path or a joserfc RSAKey; None reads the
    # CONVEX_AUTH_PRIVATE_KEY environment variable, else generates one and keeps it
    # in the instance folder.
    "CONVEX_AUTH_PRIVATE_KEY": None,
    # Retired signing keys (PEM texts or paths) kept in the JWKS until their tokens expire.
    "CONVEX_AUTH_PREVIOUS_KEYS": (),
}
"""Every CONVEX_* config key with its default; `init_app` sets the ones the app did not."""

_Loader = TypeVar("_Loader", bound=TokenLoader)
_Claims = TypeVar("_Claims", bound=ClaimsLoader)


class Convex:
    """Connects Flask apps to a Convex deployment: `Convex(app)` or `convex.init_app(app)`."""

    def __init__(self, app: Flask | None = None) -> None:
        self.hooks = Hooks()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Set CONVEX_* defaults, check the URL, open the pooled client, register hooks."""
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        for key in ("CONVEX_URL", "CONVEX_SITE_URL"):
            if app.config[key] is None:
                app.config[key] = os.environ.get(key)
        if app.config["CONVEX_URL"]:
            configured_url(app.config)
        push.check_config(app.config)
        http = ConnectionPool(timeout=float(app.config["CONVEX_TIMEOUT"]))
        transport = Transport(http, f"flask-convex-{__about__.__version__}")
        state = ConvexState(self.hooks, transport, app.config)
        weakref.finalize(state, http.close)
        app.extensions["convex"] = state
        if app.config["CONVEX_AUTH_ISSUER"]:
            auth.init_app(app, state)
        app.after_request(finish_response)
        app.register_blueprint(live.blueprint)
        app.add_template_global(head.scripts, "convex_scripts")
        app.cli.add_command(convex_cli)
        request_started.connect(start_request, app)

    def token_loader(self, loader: _Loader) -> _Loader:
        """Register the function that returns the current request's JWT (or None).

        It is called at most once per request. If it accepts `force_refresh`, a token
        Convex rejects is replaced once by `loader(force_refresh=True)`.
        """
        self.hooks.token_loader = loader
        return loader

    def identity_claims(self, loader: _Claims) -> _Claims:
        """Register the function giving the built-in issuer's extra claims for a user.

        It receives `current_user` and returns a dict such as
        `{"name": user.name, "email": user.email}`; Convex shows them in
        `ctx.auth.getUserIdentity()`.
        """
        self.hooks.identity_claims = loader
        return loader
