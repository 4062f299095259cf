"""Fixtures for the example app's tests: its own local deployment, trusting the app's tokens.

The example runs `example/convex/`, not the functions the other tests use, so it
gets a deployment of its own rather than the plugin's `convex_deployment`
(session fixtures are cached once, whatever a module overrides). Test modules
load this with `pytest_plugins`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from example import FUNCTIONS_DIR
from example.app import create_app
from flask_convex import current_issuer
from flask_convex.local import LocalDeployment
from flask_convex.testing import running_deployment


@pytest.fixture(scope="session")
def example_config() -> dict[str, Any]:
    """The example's settings for tests; CONVEX_URL is added by whoever builds the app."""
    key = RSAKey.generate_key(2048).as_pem(private=True)
    return {
        "TESTING": True,
        "SECRET_KEY": "example-tests",
        "CONVEX_AUTH_PRIVATE_KEY": key.decode(),
    }


@pytest.fixture(scope="session")
def example_deployment(
    example_config: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalDeployment]:
    """A local deployment of `example/convex/` that accepts the example's tokens."""
    with create_app(example_config).app_context():
        env = current_issuer().deployment_env()
    with running_deployment(FUNCTIONS_DIR, env, tmp_path_factory) as deployment:
        yield deployment


@pytest.fixture
def example_url(example_deployment: LocalDeployment) -> str:
    """The example deployment's URL, its data wiped for this test."""
    example_deployment.reset()
    return example_deployment.url
