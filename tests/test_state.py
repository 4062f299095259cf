"""Per-app state: the hooks a `Convex` object shares, loaders, and the checked URL."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_convex import Convex, ConvexConfigError
from flask_convex.state import can_refresh, configured_url, get_state


def test_every_app_of_one_extension_shares_its_hooks() -> None:
    convex = Convex()
    first, second = Flask("first"), Flask("second")
    for app in (first, second):
        app.config["CONVEX_URL"] = "https://happy-otter-123.convex.cloud"
        convex.init_app(app)

    @convex.token_loader
    def load() -> str:
        return "t"

    for app in (first, second):
        with app.app_context():
            assert get_state().token_loader() is load


def test_the_issuers_loader_serves_only_when_the_app_registered_none() -> None:
    app = Flask(__name__)
    app.config["CONVEX_URL"] = "https://happy-otter-123.convex.cloud"
    convex = Convex(app)
    with app.app_context():
        state = get_state()
        state.fallback_loader = lambda: "minted"
        assert state.token_loader() is state.fallback_loader
        convex.token_loader(lambda: "own")
        loader = state.token_loader()
        assert loader is not None
        assert loader() == "own"


def test_a_refreshing_loader_is_told_apart_by_its_signature() -> None:
    def plain() -> str:
        return "t"

    def refreshing(force_refresh: bool = False) -> str:
        return "t"

    assert not can_refresh(plain)
    assert can_refresh(refreshing)


def test_a_bad_url_names_the_setting() -> None:
    config = {"CONVEX_URL": "ftp://nope", "CONVEX_SKIP_URL_CHECK": False}
    with pytest.raises(ConvexConfigError, match="CONVEX_URL"):
        configured_url(config)
    assert configured_url({**config, "CONVEX_URL": "https://a-1.convex.cloud/"}) == (
        "https://a-1.convex.cloud"
    )


def test_a_url_is_checked_again_whenever_its_settings_change() -> None:
    config = {"CONVEX_URL": "https://a-1.convex.site", "CONVEX_SKIP_URL_CHECK": False}
    with pytest.raises(ConvexConfigError, match=r"\.convex\.site"):
        configured_url(config)
    assert configured_url({**config, "CONVEX_SKIP_URL_CHECK": True}) == "https://a-1.convex.site"
    with pytest.raises(ConvexConfigError, match=r"\.convex\.site"):
        configured_url(config)
