"""The real `npx convex` CLI (the pinned npm package) against the local deployment."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from _local import NpxConvex, call, npx_convex_argv, streamed_until

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


def test_logs_streams_each_functions_lines_and_errors_to_npx_convex_logs(
    deployment: LocalDeployment, tmp_path: Path
) -> None:
    def run_some() -> None:
        call(deployment.url, "query", "logs:noisy")
        call(deployment.url, "mutation", "logs:failingMutation")

    seen = streamed_until(
        npx_convex_argv(deployment, "logs", "--success"),
        run_some,
        re.escape("[CONVEX Q(logs:noisy)] [LOG] 'hi' 1"),
        re.escape("[CONVEX Q(logs:noisy)] [ERROR] 'error line' { a: 1 }"),
        r"\[CONVEX Q\(logs:noisy\)\] Function executed in \d+ ms",
        re.escape("[CONVEX M(logs:failingMutation)] [LOG] 'about to fail'"),
        re.escape("[CONVEX M(logs:failingMutation)] Uncaught Error: mutation failed"),
        cwd=tmp_path,
    )
    assert "M(logs:failingMutation)] Function executed" not in seen


def test_the_log_stream_needs_an_admin_key(deployment: LocalDeployment) -> None:
    refused = httpx.get(f"{deployment.url}/api/stream_function_logs", params={"cursor": "0"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "BadDeployKey"


def test_the_log_stream_waits_for_the_next_execution_and_misses_none(
    deployment: LocalDeployment,
) -> None:
    stream = f"{deployment.url}/api/stream_function_logs"
    headers = deployment.admin_headers
    now = httpx.get(stream, params={"cursor": "0"}, headers=headers).json()["newCursor"]
    for _ in range(3):
        call(deployment.url, "action", "logs:chattyAction")
    answer = httpx.get(stream, params={"cursor": repr(now)}, headers=headers).json()
    assert [entry["identifier"] for entry in answer["entries"]] == ["logs:chattyAction"] * 3
    assert answer["entries"][0]["logLines"] == ["[DEBUG] 'debug from an action'"]
    assert answer["entries"][0]["udfType"] == "Action"
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            httpx.get, stream, params={"cursor": repr(answer["newCursor"])}, headers=headers
        )
        time.sleep(0.5)
        assert not waiting.done(), "answered with nothing new"
        call(deployment.url, "query", "logs:noisy")
        later = waiting.result(timeout=10).json()
    assert [entry["identifier"] for entry in later["entries"]] == ["logs:noisy"]
    assert later["newCursor"] > answer["newCursor"]


def test_the_log_stream_of_an_idle_deployment_waits_rather_than_spins(
    deployment: LocalDeployment,
) -> None:
    stream = f"{deployment.url}/api/stream_function_logs"
    first = httpx.get(stream, params={"cursor": "0"}, headers=deployment.admin_headers).json()
    assert first["entries"] == []
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(
            httpx.get,
            stream,
            params={"cursor": repr(first["newCursor"])},
            headers=deployment.admin_headers,
        )
        time.sleep(0.5)
        assert not waiting.done(), "an idle stream answered at once: its client polls in a loop"
        call(deployment.url, "query", "logs:noisy")
        assert len(waiting.result(timeout=10).json()["entries"]) == 1


def test_an_execution_keeps_the_backends_log_limits(deployment: LocalDeployment) -> None:
    many = call(deployment.url, "query", "logs:flood", {"lines": 300, "length": 1})["logLines"]
    assert len(many) == 256
    assert many[-1] == "[ERROR] Log overflow (maximum 256). Remaining log lines omitted."
    long = call(deployment.url, "query", "logs:flood", {"lines": 20, "length": 100_000})
    lines = long["logLines"]
    assert len(lines) == 10
    assert lines[-1] == "[ERROR] Log overflow (maximum 1M characters). Remaining log lines omitted."
