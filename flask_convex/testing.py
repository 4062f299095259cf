"""pytest plugin: a local Convex deployment running your ``convex/`` functions.

Registered through the ``pytest11`` entry point. Tests ask for ``convex_url``
(a deployment whose data is wiped before the test) or ``convex_deployment``
(the session's :class:`~flask_convex.local.LocalDeployment`). Point it at your
functions with the ini option ``convex_functions_dir`` or by overriding the
``convex_functions_dir`` fixture; give functions environment variables by
overriding ``convex_env``. Both overrides must stay session-scoped.

``convex_login(client, user)`` logs a flask-login user in for a test client of
an app whose built-in issuer is on (``CONVEX_AUTH_ISSUER``): the deployment
verifies the app's tokens with its JWKS handed over inline, so no server has to
publish it. ``log_in`` does the same for a deployment of your own.

With respx installed, the plugin also lets ``respx.mock`` fake flask-convex's
calls to Convex, which go through its own connection pool rather than httpx's.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from flask_convex.auth import current_issuer
from flask_convex.connections import respx_targets
from flask_convex.local import LocalDeployment

LogIn = Callable[..., FlaskClient]


def pytest_configure(config: pytest.Config) -> None:
    if importlib.util.find_spec("respx") is not None:
        from respx.mocks import HTTPCoreMocker  # respx is optional

        HTTPCoreMocker.add_targets(*respx_targets())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "convex_functions_dir",
        "directory of the Convex functions the local deployment serves (default: convex/)",
        default="convex",
    )


@contextmanager
def running_deployment(
    functions_dir: Path, env: Mapping[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalDeployment]:
    """A local deployment of `functions_dir` on a free port with a throw-away data file.

    Backs `convex_deployment`; use it in a fixture of your own to serve a second
    functions folder in the same session.
    """
    data_file = tmp_path_factory.mktemp("convex-local") / "data.jsonl"
    with LocalDeployment(functions_dir, data_file=data_file, env=dict(env)) as deployment:
        yield deployment


@pytest.fixture(scope="session")
def convex_functions_dir(pytestconfig: pytest.Config) -> Path:
    """The ``convex/`` directory to serve, relative to the pytest root directory."""
    return pytestconfig.rootpath / str(pytestconfig.getini("convex_functions_dir"))


@pytest.fixture(scope="session")
def convex_env() -> dict[str, str]:
    """``process.env`` of the functions, like ``npx convex env set``."""
    return {}


@pytest.fixture(scope="session")
def convex_deployment(
    convex_functions_dir: Path,
    convex_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalDeployment]:
    """One local deployment for the test session, on a free port, with a throw-away data file."""
    with running_deployment(convex_functions_dir, convex_env, tmp_path_factory) as deployment:
        yield deployment


@pytest.fixture
def convex_reset(convex_deployment: LocalDeployment) -> None:
    """Wipes the deployment's data, so the test starts from empty tables."""
    convex_deployment.reset()


@pytest.fixture
def convex_url(convex_deployment: LocalDeployment, convex_reset: None) -> str:
    """The URL of the session's deployment, its data wiped for this test."""
    return convex_deployment.url


def log_in(
    client: FlaskClient, user: Any, deployment: LocalDeployment, *, fresh: bool = True
) -> FlaskClient:
    """Logs flask-login `user` in for `client`; `deployment` then accepts the app's tokens for them.

    The deployment gets the JWKS of the client's app (its ``auth.config.ts`` must
    name the app's issuer, as it would in production). Returns `client`.
    """
    with client.application.app_context():
        issuer = current_issuer()
    deployment.trust_issuer(issuer.issuer, issuer.jwks())
    # What flask-login's own FlaskLoginClient writes to the session.
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = fresh
    return client


@pytest.fixture
def convex_login(convex_deployment: LocalDeployment) -> LogIn:
    """``convex_login(client, user)``: :func:`log_in` on the session's deployment."""
    return functools.partial(log_in, deployment=convex_deployment)
