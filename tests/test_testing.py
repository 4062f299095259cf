"""The pytest plugin, exercised from inside a throw-away pytest session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from joserfc.jwk import RSAKey

from flask_convex import TokenIssuer

pytestmark = pytest.mark.integration

USES_FIXTURES = """
import os
import httpx

def call(url, route, path, args):
    response = httpx.post(f"{url}/api/{route}", json={"path": path, "args": args})
    return response.json()["value"]

def increment(url):
    return call(url, "mutation", "counter:increment", {"name": "n"})

def test_first_write(convex_url, convex_deployment):
    assert increment(convex_url) == 1.0
    (convex_deployment.functions_dir.parent / "pid").write_text(str(convex_deployment.pid))

def test_data_is_wiped_between_tests(convex_url):
    assert increment(convex_url) == 1.0

def test_env_reaches_functions(convex_url):
    greeting = call(convex_url, "query", "counter:env", {"name": "GREETING"})
    assert greeting == os.environ.get("EXPECTED_GREETING")
"""


def run_session(pytester: pytest.Pytester, functions_dir: Path, target: str) -> int:
    shutil.copytree(functions_dir, pytester.path / target)
    pytester.makepyfile(test_inner=USES_FIXTURES)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    return int((pytester.path / target).parent.joinpath("pid").read_text())


def assert_stopped(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_default_directory_and_env_fixture_override(
    pytester: pytest.Pytester, convex_functions_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(
        """
import pytest

@pytest.fixture(scope="session")
def convex_env():
    return {"GREETING": "from the fixture"}
"""
    )
    monkeypatch.setenv("EXPECTED_GREETING", "from the fixture")
    assert_stopped(run_session(pytester, convex_functions_dir, "convex"))


def test_ini_option_names_the_functions_directory(
    pytester: pytest.Pytester, convex_functions_dir: Path
) -> None:
    pytester.makeini("[pytest]\nconvex_functions_dir = backend/convex\n")
    assert_stopped(run_session(pytester, convex_functions_dir, "backend/convex"))


LOGGED_IN = """
import pytest
from flask import Flask
from flask_login import LoginManager, UserMixin
from flask_convex import Convex, ConvexAuthError, api, fetch_query

class User(UserMixin):
    def __init__(self, id):
        self.id = id

# Not `app`: pytest-flask would share one `g`, where flask-login keeps the user, across clients.
@pytest.fixture
def site(convex_url, tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        TESTING=True,
        SECRET_KEY="t",
        CONVEX_URL=convex_url,
        CONVEX_AUTH_ISSUER="http://127.0.0.1:9",
    )
    LoginManager(app).user_loader(User)
    Convex(app)
    app.get("/me")(lambda: str((fetch_query(api.identity.whoami) or {}).get("subject")))
    return app

# First: the deployment is the session's, and logging in hands it the keys for good.
def test_unverifiable_tokens_name_the_issuer_and_keys_tried(site):
    client = site.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "ada"
    with pytest.raises(ConvexAuthError) as failure:
        client.get("/me")
    message = str(failure.value)
    assert "issuer http://127.0.0.1:9" in message
    assert "keys from http://127.0.0.1:9/.well-known/jwks.json" in message

def test_a_logged_in_user_is_the_convex_identity(site, convex_login):
    client = convex_login(site.test_client(), User("ada"))
    assert client.get("/me").text == "ada"
    assert site.test_client().get("/me").text == "None"
"""


def test_convex_login_needs_no_server_publishing_the_keys(
    pytester: pytest.Pytester, convex_functions_dir: Path
) -> None:
    functions = pytester.path / "convex"
    functions.mkdir()
    shutil.copy(convex_functions_dir / "identity.ts", functions)
    issuer = TokenIssuer("http://127.0.0.1:9", "flask-convex", 3600, RSAKey.generate_key(2048))
    # As printed by `flask convex auth-config`: the JWKS URL of an app no test runs.
    (functions / "auth.config.ts").write_text(issuer.auth_config())
    pytester.makepyfile(test_login=LOGGED_IN)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
