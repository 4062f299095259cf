"""Per-app state: the registered hooks, the pooled transport and the deployment URL.

Feature modules (fetch, preload, live, auth, cli) read it; the `Convex` extension
in `extension.py` builds it and wires the features into the app.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from flask import Config
from markupsafe import Markup

from . import current
from .client import Transport, check_deployment_url
from .errors import ConvexConfigError
from .memo import Memo
from .recent import RecentAnswers

HEAD_TAGS_KEPT: Final = 64
"""Site roots and settings whose <head> tags are kept at once: the Host header is the
client's to choose."""

TokenLoader = Callable[..., str | None]
"""Returns the JWT for the current request, or None; may accept `force_refresh: bool`."""

ClaimsLoader = Callable[[Any], Mapping[str, Any]]
"""Given the logged-in user, returns extra claims for their token, e.g. name and email."""


@dataclass
class Hooks:
    """The functions registered on one `Convex` object, shared by every app it was set up on."""

    token_loader: TokenLoader | None = None
    identity_claims: ClaimsLoader | None = None


@dataclass
class ConvexState:
    """What one app's extension holds: the registered hooks and the pooled transport."""

    hooks: Hooks
    transport: Transport
    config: Config
    """The app's configuration (no proxy to look it up through on every call)."""
    recent: RecentAnswers = field(default_factory=RecentAnswers)
    """What recent polls saw, shared by this process's requests."""
    head_tags: Memo[Hashable, Markup] = field(default_factory=lambda: Memo(HEAD_TAGS_KEPT))
    """The <head> tags rendered for each site root and settings (see `head`)."""
    fallback_loader: TokenLoader | None = None
    """Used when the app registered no token loader; the built-in JWT issuer sets it."""

    def token_loader(self) -> TokenLoader | None:
        """The loader that gives this app's requests their token, if any."""
        return self.hooks.token_loader or self.fallback_loader

    @property
    def url(self) -> str:
        """The configured deployment URL, checked, without a trailing slash."""
        return configured_url(self.config)


def configured_url(config: Mapping[str, Any], setting: str = "CONVEX_URL") -> str:
    """CONVEX_URL (or `setting`) checked, or a ConvexConfigError naming what is wrong with it."""
    try:
        return check_deployment_url(
            config[setting], skip_check=config["CONVEX_SKIP_URL_CHECK"], setting=setting
        )
    except ValueError as error:
        raise ConvexConfigError(str(error)) from error


def can_refresh(loader: TokenLoader) -> bool:
    """Whether a token loader takes `force_refresh`, so a rejected token can be replaced."""
    return "force_refresh" in inspect.signature(loader).parameters


def get_state() -> ConvexState:
    """The current app's extension state, or a ConvexConfigError saying how to set it up."""
    try:
        state: ConvexState = current.app().extensions["convex"]
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
