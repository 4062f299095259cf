"""The pytest plugin, exercised from inside a throw-away pytest session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

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
