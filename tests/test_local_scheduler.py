"""Scheduled functions on the local deployment: durable jobs, real states, printed logs."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from _local import call, eventually

from flask_convex.local import LocalDeployment

pytestmark = pytest.mark.integration

FUNCTIONS = Path(__file__).parent / "functions" / "convex"


def job(url: str, job_id: str) -> Any:
    return call(url, "query", "jobs:job", {"id": job_id})["value"]


def notes(url: str) -> list[str]:
    value: list[str] = call(url, "query", "counter:notes")["value"]
    return value


def test_a_job_runs_and_goes_from_pending_to_success(convex_url: str) -> None:
    job_id = call(convex_url, "mutation", "jobs:later", {"text": "soon", "ms": 2000})["value"]
    pending = job(convex_url, job_id)
    assert (pending["state"], pending["name"]) == ({"kind": "pending"}, "jobs:record")
    assert pending["args"] == [{"text": "soon"}]
    eventually(lambda: job(convex_url, job_id)["state"] == {"kind": "success"}, "success")
    assert notes(convex_url) == ["soon"]
    done = job(convex_url, job_id)
    assert done["completedTime"] >= done["scheduledTime"]


def test_a_failing_job_is_failed_with_its_error_printed(
    convex_url: str, convex_deployment: LocalDeployment
) -> None:
    job_id = call(convex_url, "mutation", "jobs:failing")["value"]
    eventually(lambda: job(convex_url, job_id)["state"]["kind"] == "failed", "failed")
    state = job(convex_url, job_id)["state"]
    assert "job exploded" in state["error"]
    eventually(
        lambda: any(
            line.startswith("[CONVEX M(jobs:explode)] Uncaught Error: job exploded")
            for line in convex_deployment.output
        ),
        "the job's error in the deployment's output",
    )


def test_a_jobs_log_lines_are_printed_under_its_name(
    convex_url: str, convex_deployment: LocalDeployment
) -> None:
    call(convex_url, "action", "jobs:fromAction", {"text": "from an action"})
    line = "[CONVEX M(jobs:record)] [LOG] 'recording' 'from an action'"
    eventually(lambda: line in convex_deployment.output, "the job's log line")
    assert notes(convex_url) == ["from an action"]


def test_a_canceled_job_never_runs(convex_url: str) -> None:
    job_id = call(convex_url, "mutation", "jobs:later", {"text": "never", "ms": 2000})["value"]
    call(convex_url, "mutation", "jobs:cancel", {"id": job_id})
    canceled = job(convex_url, job_id)
    assert canceled["state"] == {"kind": "canceled"}
    assert "completedTime" in canceled
    time.sleep(2.5)  # past its time: a canceled job's timer must find nothing to run
    assert notes(convex_url) == []
    assert job(convex_url, job_id)["state"] == {"kind": "canceled"}


def test_a_job_pending_at_kill_9_runs_after_the_restart(tmp_path: Path) -> None:
    data_file = tmp_path / "data.jsonl"
    crashed = LocalDeployment(FUNCTIONS, data_file=data_file)
    crashed.start()
    soon = call(crashed.url, "mutation", "jobs:later", {"text": "missed", "ms": 200})["value"]
    when = time.time() * 1000 + 3000
    later = call(crashed.url, "mutation", "jobs:at", {"text": "on time", "when": when})["value"]
    assert crashed.pid is not None
    os.kill(crashed.pid, signal.SIGKILL)
    crashed.wait()
    crashed.stop()
    time.sleep(0.5)  # the first job's time passes while nothing runs
    with LocalDeployment(FUNCTIONS, data_file=data_file) as restarted:
        eventually(lambda: job(restarted.url, soon)["state"] == {"kind": "success"}, "late job")
        eventually(lambda: job(restarted.url, later)["state"] == {"kind": "success"}, "due job")
        assert job(restarted.url, later)["completedTime"] >= when
        assert sorted(notes(restarted.url)) == ["missed", "on time"]
