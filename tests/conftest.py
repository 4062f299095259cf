"""Shared fixtures: an app on a respx-faked deployment; the local one serving tests/functions."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from _local import NpxConvex, npx_convex_argv
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey

from flask_convex import Convex, jwks_data_uri
from flask_convex.local import LocalDeployment

FUNCTIONS_DIR = Path(__file__).parent / "functions" / "convex"
ISSUER = "https://issuer.flask-convex.test"
APPLICATION_ID = "flask-convex-tests"

CONVEX_URL = "https://happy-otter-123.convex.cloud"

TokenMinter = Callable[..., str]

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def convex_functions_dir() -> Path:
    return FUNCTIONS_DIR


@pytest.fixture(scope="session")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "test-key", "alg": "RS256", "use": "sig"})


@pytest.fixture(scope="session")
def convex_env(signing_key: RSAKey) -> dict[str, str]:
    return {
        "TEST_AUTH_ISSUER": ISSUER,
        "TEST_AUTH_JWKS": jwks_data_uri({"keys": [signing_key.as_dict(private=False)]}),
        "TEST_AUTH_APPLICATION_ID": APPLICATION_ID,
        "GREETING": "hello from env",
    }


@pytest.fixture(scope="session")
def mint_token(signing_key: RSAKey) -> TokenMinter:
    """Signs a token the way an app's issuer would; `claims` override (None drops) defaults."""

    def mint(subject: str = "user-1", *, key: RSAKey = signing_key, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "sub": subject,
            "aud": APPLICATION_ID,
            "iat": now,
            "exp": now + 600,
        }
        payload.update(claims)
        header = {"alg": "RS256", "typ": "JWT", "kid": key.kid}
        return jwt.encode(header, {k: v for k, v in payload.items() if v is not None}, key)

    return mint


@pytest.fixture
def convex() -> Convex:
    """The extension object, for registering a token loader."""
    return Convex()


@pytest.fixture
def app(convex: Convex) -> Flask:
    """A Flask app pointing at a (faked) deployment; pytest-flask pushes a request for it."""
    app = Flask(__name__)
    app.config.update(TESTING=True, CONVEX_URL=CONVEX_URL)
    convex.init_app(app)
    return app


@pytest.fixture
def convex_api() -> Iterator[respx.MockRouter]:
    """The deployment's HTTP API: add routes such as `convex_api.post("/api/query")`."""
    with respx.mock(base_url=CONVEX_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
def npx_convex(tmp_path: Path) -> Callable[[LocalDeployment], NpxConvex]:
    """Runs `npx convex ARGS --url URL --admin-key KEY` from an app folder, offline."""
    project = tmp_path / "app"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"dependencies": {"convex": "*"}}))

    def bind(target: LocalDeployment) -> NpxConvex:
        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                npx_convex_argv(target, *args),
                cwd=project,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        return run

    return bind
