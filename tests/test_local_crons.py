"""Cron jobs on the local deployment: convex/crons.ts runs on schedule, in UTC."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _local import call, eventually

from flask_convex.local import LocalDeployment, install_server

pytestmark = pytest.mark.integration

CRONS = Path(__file__).parent / "crons" / "convex"


def next_runs(schedules: list[dict[str, object]], now: datetime) -> list[str]:
    """The next run of each schedule after `now`, by the server's own crons.mjs."""
    script = (
        "import { nextRun } from './crons.mjs';"
        "const [schedules, now] = JSON.parse(process.argv[1]);"
        "const runs = schedules.map((s) => new Date(nextRun(s, now)).toISOString());"
        "console.log(JSON.stringify(runs));"
    )
    argument = json.dumps([schedules, now.timestamp() * 1000])
    output = subprocess.run(
        ["node", "--input-type=module", "-e", script, argument],
        cwd=install_server(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    runs: list[str] = json.loads(output)
    return runs


def test_every_schedule_kind_runs_at_its_utc_time() -> None:
    now = datetime(2026, 12, 1, 22, 10, 30, tzinfo=UTC)  # a Tuesday
    assert next_runs(
        [
            {"type": "interval", "seconds": 30},
            {"type": "interval", "minutes": 2},
            {"type": "hourly", "minuteUTC": 5},
            {"type": "daily", "hourUTC": 3, "minuteUTC": 30},
            {"type": "weekly", "dayOfWeek": "friday", "hourUTC": 9, "minuteUTC": 0},
            {"type": "monthly", "day": 1, "hourUTC": 0, "minuteUTC": 0},
            {"type": "cron", "cron": "*/15 * * * *"},
        ],
        now,
    ) == [
        "2026-12-01T22:11:00.000Z",
        "2026-12-01T22:12:30.000Z",
        "2026-12-01T23:05:00.000Z",
        "2026-12-02T03:30:00.000Z",
        "2026-12-04T09:00:00.000Z",
        "2027-01-01T00:00:00.000Z",
        "2026-12-01T22:15:00.000Z",
    ]


def test_crons_run_while_the_deployment_runs_with_their_logs_printed() -> None:
    with LocalDeployment(CRONS) as deployment:
        eventually(
            lambda: (
                call(deployment.url, "query", "ticks:count", {"label": "interval"})["value"] >= 2
            ),
            "two runs of the one-second cron",
        )
        assert call(deployment.url, "query", "ticks:count", {"label": "daily"})["value"] == 0
        assert "[CONVEX M(ticks:tick)] [LOG] 'tick' 'interval'" in deployment.output


def test_a_bad_cron_expression_fails_the_build(tmp_path: Path) -> None:
    for source in CRONS.iterdir():
        (tmp_path / source.name).write_text(source.read_text())
    (tmp_path / "crons.ts").write_text(
        (CRONS / "crons.ts").read_text().replace('"* * * * *"', '"not a cron"')
    )
    with pytest.raises(Exception, match="cannot start the local deployment"):
        LocalDeployment(tmp_path).start()
