"""The `Convex` Flask extension: configuration, the pooled HTTP client, token loaders."""

from __future__ import annotations

import inspect
import os
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import httpx
from flask import Flask, current_app, request_started

from . import __about__, auth
from .cli import convex_cli
from .client import Transport, check_deployment_url
from .context import finish_response, start_request
from .errors import ConvexConfigError
from .recent import RecentAnswers

DEFAULTS: Final[dict[str, Any]] = {
    # The deployment, e.g. "https://happy-otter-123.convex.cloud". Defaults to the
    # CONVEX_URL environment variable; `flask convex dev` and the pytest plugin set
    # it to the local deployment they start.
    "CONVEX_URL": None,
    # Accept any URL, as the official clients' skipConvexDeploymentUrlCheck.
    "CONVEX_SKIP_URL_CHECK": False,
    # Seconds to wait for Convex on one call (connect, read and write each).
    "CONVEX_TIMEOUT": 10.0,
    # Add a Server-Timing header naming each Convex call; None means "when debugging".
    "CONVEX_SERVER_TIMING": None,
    # Seconds between the polls that keep a page's live fragments current.
    "CONVEX_POLL_INTERVAL": 2.0,
    # Seconds a poll's answer also serves other polls of the same query and token in
    # this process (they learn "unchanged" without asking Convex); 0 turns it off.
    "CONVEX_POLL_SHARE": 1.0,
    # Seconds a signed live reference in a page stays valid.
    "CONVEX_LIVE_MAX_AGE": 24 * 3600,
    # Largest request body a server action accepts, in bytes.
    "CONVEX_ACTION_MAX_BODY": 1024 * 1024,
    # Other origins (host[:port], as Next.js serverActions.allowedOrigins) whose pages
    # may post to server actions; the app's own origin is always allowed.
    "CONVEX_ACTION_ALLOWED_ORIGINS": (),
    # The app's convex/ folder, run by the local deployment; None means <app root>/convex.
    "CONVEX_FUNCTIONS_DIR": None,
    # Environment variables for the local deployment's functions (`flask convex local`
    # and `dev`): a dict, as `npx convex env set`; `--env KEY=VALUE` options override it.
    "CONVEX_LOCAL_ENV": None,
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

TokenLoader = Callable[..., str | None]
"""Returns the JWT for the current request, or None; may accept `force_refresh: bool`."""

_Loader = TypeVar("_Loader", bound=TokenLoader)
_Claims = TypeVar("_Claims", bound="auth.ClaimsLoader")


@dataclass
class ConvexState:
    """What one app's extension holds: the extension object and the pooled transport."""

    extension: Convex
    transport: Transport
    recent: RecentAnswers = field(default_factory=RecentAnswers)
    """What recent polls saw, shared by this process's requests."""
    fallback_loader: TokenLoader | None = None
    """Used when the app registered no token loader; the built-in JWT issuer sets it."""

    def token_loader(self) -> TokenLoader | None:
        """The loader that gives this app's requests their token, if any."""
        return self.extension.token_loader_func or self.fallback_loader

    @property
    def url(self) -> str:
        """The configured deployment URL, checked, without a trailing slash."""
        return configured_url(current_app.config)


def configured_url(config: Mapping[str, Any]) -> str:
    """CONVEX_URL checked, or a ConvexConfigError naming what is wrong with it."""
    try:
        return check_deployment_url(
            config["CONVEX_URL"], skip_check=config["CONVEX_SKIP_URL_CHECK"], setting="CONVEX_URL"
        )
    except ValueError as error:
        raise ConvexConfigError(str(error)) from error


class Convex:
    """Connects Flask apps to a Convex deployment: `Convex(app)` or `convex.init_app(app)`."""

    def __init__(self, app: Flask | None = None) -> None:
        self.token_loader_func: TokenLoader | None = None
        self.identity_claims_func: auth.ClaimsLoader | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Set CONVEX_* defaults, check the URL, open the pooled client, register hooks."""
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        if app.config["CONVEX_URL"] is None:
            app.config["CONVEX_URL"] = os.environ.get("CONVEX_URL")
        if app.config["CONVEX_URL"]:
            configured_url(app.config)
        http = httpx.Client(
            timeout=float(app.config["CONVEX_TIMEOUT"]),
            limits=httpx.Limits(max_keepalive_connections=32, keepalive_expiry=30),
        )
        state = ConvexState(self, Transport(http, f"flask-convex-{__about__.__version__}"))
        weakref.finalize(state, http.close)
        app.extensions["convex"] = state
        if app.config["CONVEX_AUTH_ISSUER"]:
            auth.init_app(app, state)
        app.after_request(finish_response)
        # Imported here: live fragments are built on the modules that import this one.
        from .live import blueprint

        app.register_blueprint(blueprint)
        app.cli.add_command(convex_cli)
        request_started.connect(start_request, app)

    def token_loader(self, loader: _Loader) -> _Loader:
        """Register the function that returns the current request's JWT (or None).

        It is called at most once per request. If it accepts `force_refresh`, a token
        Convex rejects is replaced once by `loader(force_refresh=True)`.
        """
        self.token_loader_func = loader
        return loader

    def identity_claims(self, loader: _Claims) -> _Claims:
        """Register the function giving the built-in issuer's extra claims for a user.

        It receives `current_user` and returns a dict such as
        `{"name": user.name, "email": user.email}`; Convex shows them in
        `ctx.auth.getUserIdentity()`.
        """
        self.identity_claims_func = loader
        return loader


def can_refresh(loader: TokenLoader) -> bool:
    """Whether a token loader takes `force_refresh`, so a rejected token can be replaced."""
    return "force_refresh" in inspect.signature(loader).parameters


def get_state() -> ConvexState:
    """The current app's extension state, or a ConvexConfigError saying how to set it up."""
    try:
        state: ConvexState = current_app.extensions["convex"]
    except RuntimeError as error:
        raise ConvexConfigError(
            "flask-convex needs an app context: "
            "call it inside a request or `with app.app_context():`"
        ) from error
    except KeyError as error:
        raise ConvexConfigError(
            "The Convex extension is not set up on this app: "
            "call Convex(app) or convex.init_app(app)"
        ) from error
    return state
