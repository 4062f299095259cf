"""The real `npx convex` CLI (the pinned npm package) against the local deployment."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from _local import NpxConvex, call

from flask_convex.local import LocalDeployment

pytestmark = pytest.mark.integration


@pytest.fixture
def deployment(convex_functions_dir: Path, tmp_path: Path) -> Iterator[LocalDeployment]:
    with LocalDeployment(convex_functions_dir, data_file=tmp_path / "data.jsonl") as running:
        yield running


def test_run_calls_any_function_as_admin(
    deployment: LocalDeployment, npx_convex: Callable[[LocalDeployment], NpxConvex]
) -> None:
    convex = npx_convex(deployment)
    ran = convex("run", "counter:increment", '{"name": "cli", "by": 2}')
    assert (ran.returncode, ran.stdout.strip()) == (0, "2")
    missing = convex("run", "counter:nope")
    assert missing.returncode == 1
    assert "Could not find public function for 'counter:nope'" in missing.stderr


def test_env_set_list_remove_persist_and_reach_functions(
    deployment: LocalDeployment,
    npx_convex: Callable[[LocalDeployment], NpxConvex],
    convex_functions_dir: Path,
) -> None:
    convex = npx_convex(deployment)
    assert convex("env", "set", "GREETING", "hi there").returncode == 0
    assert convex("env", "list").stdout.strip() == "GREETING=hi there"
    assert call(deployment.url, "query", "counter:env", {"name": "GREETING"})["value"] == "hi there"
    assert deployment.data_file is not None
    deployment.stop()
    with LocalDeployment(convex_functions_dir, data_file=deployment.data_file) as restarted:
        again = npx_convex(restarted)
        assert again("env", "get", "GREETING").stdout.strip() == "hi there"
        assert again("env", "remove", "GREETING").returncode == 0
        assert call(restarted.url, "query", "counter:env", {"name": "GREETING"})["value"] is None
        assert "No environment variables set" in again("env", "list").stderr


def test_a_bad_env_name_is_refused(deployment: LocalDeployment) -> None:
    refused = httpx.post(
        f"{deployment.url}/api/update_environment_variables",
        json={"changes": [{"name": "1BAD", "value": "x"}]},
        headers=deployment.admin_headers,
    )
    assert refused.status_code == 400
    assert "Invalid environment variable name" in refused.json()["message"]


def test_data_lists_tables_and_documents(
    deployment: LocalDeployment, npx_convex: Callable[[LocalDeployment], NpxConvex]
) -> None:
    call(deployment.url, "mutation", "counter:addNote", {"text": "first"})
    call(deployment.url, "mutation", "counter:addNote", {"text": "second"})
    convex = npx_convex(deployment)
    assert convex("data").stdout.split() == ["articles", "contacts", "counters", "notes"]
    listed = convex("data", "notes", "--format", "jsonl")
    assert [json.loads(line)["text"] for line in listed.stdout.splitlines()] == ["second", "first"]


def test_system_functions_need_an_admin_key(deployment: LocalDeployment) -> None:
    result = call(deployment.url, "query", "_system/cli/queryEnvironmentVariables")
    assert result["status"] == "error"
    assert "Could not find public function" in result["errorMessage"]
