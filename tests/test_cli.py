"""`flask convex local` and `flask convex dev`, run as a developer would from a shell."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from _local import call, free_port, free_port_and_the_next, streamed_until
from flask import Flask

from flask_convex.cli import convex_cli
from flask_convex.local import LocalDeployment

pytestmark = pytest.mark.integration

APP = """
import os
from flask import Flask
from flask_convex import Convex, api, fetch_query

app = Flask(__name__)
app.config["CONVEX_FUNCTIONS_DIR"] = {functions!r}
Convex(app)

@app.get("/convex-url")
def convex_url():
    return os.environ.get("CONVEX_URL", "")

@app.get("/site-url")
def site_url():
    return app.config["CONVEX_SITE_URL"] or ""

@app.get("/noisy")
def noisy():
    return str(fetch_query(api.logs.noisy))
"""

CONVEX_LINE = r" \* Convex: +(http://\S+) \(functions in "
PATIENCE = 60
"""Seconds a start or stop may take: only a failing test waits that long; a loaded CI needs it."""


FUNCTIONS = Path(__file__).parent / "functions" / "convex"


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "cliapp.py").write_text(APP.format(functions=str(FUNCTIONS)))
    return tmp_path


Runner = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def run_flask(app_dir: Path) -> Iterator[Runner]:
    """Starts `flask --app cliapp ...` in its own process group, as a shell would."""
    started: list[subprocess.Popen[str]] = []

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "cliapp", *args],
            cwd=app_dir,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_ctrl_c_stops_it,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _ctrl_c_stops_it() -> None:
    # A script's background job ignores Ctrl-C (POSIX), and so would every command it
    # starts: a suite started that way must still see Ctrl-C stop them, as a terminal does.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def read_until(process: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    raise AssertionError("".join(seen))


def stop(process: subprocess.Popen[str]) -> str:
    """Ctrl-C, then everything the command printed that was not read yet."""
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=PATIENCE)
    return output


def ctrl_c(process: subprocess.Popen[str]) -> int:
    os.killpg(process.pid, signal.SIGINT)
    return process.wait(timeout=PATIENCE)


def wait_for(url: str) -> httpx.Response:
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            return httpx.get(url)
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.1)


def test_local_prints_its_url_and_stops_on_ctrl_c(run_flask: Runner, app_dir: Path) -> None:
    process = run_flask("convex", "local", "--convex-port", "0", "--no-watch")
    url = read_until(process, r"Convex local deployment: (http://\S+)").group(1)
    response = httpx.post(
        f"{url}/api/mutation", json={"path": "counter:addNote", "args": {"text": "n"}}
    )
    assert response.json()["status"] == "success"
    assert ctrl_c(process) == 0
    assert (app_dir / "instance" / "convex-local.jsonl").exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(url)


def test_dev_runs_flask_against_the_local_deployment(run_flask: Runner) -> None:
    port = free_port()
    process = run_flask("convex", "dev", "--port", str(port), "--convex-port", "0")
    url = read_until(process, CONVEX_LINE).group(1)
    assert wait_for(f"http://127.0.0.1:{port}/convex-url").text == url
    assert "deployment exited" not in stop(process)
    assert process.returncode == 0, "a Ctrl-C is a clean stop, not a deployment failure"
    for stopped in (url, f"http://127.0.0.1:{port}/convex-url"):
        with pytest.raises(httpx.TransportError):
            httpx.get(stopped)


def test_dev_stops_both_servers_on_sigterm(run_flask: Runner) -> None:
    port = free_port()
    process = run_flask("convex", "dev", "--port", str(port), "--convex-port", "0")
    url = read_until(process, CONVEX_LINE).group(1)
    wait_for(f"http://127.0.0.1:{port}/convex-url")
    # Only the command itself, as a process supervisor would stop it.
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=PATIENCE) == 0
    for stopped in (url, f"http://127.0.0.1:{port}/convex-url"):
        with pytest.raises(httpx.TransportError):
            httpx.get(stopped)


def children(pid: int) -> dict[int, str]:
    """The processes `pid` started, by pid, with their command lines (Linux's /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # it ended while we looked
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            found[int(stat.parent.name)] = command
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_dev_stops_the_flask_server_and_fails_when_the_deployment_dies(
    run_flask: Runner,
) -> None:
    port = free_port()
    process = run_flask("convex", "dev", "--port", str(port), "--convex-port", "0")
    url = read_until(process, CONVEX_LINE).group(1)
    wait_for(f"http://127.0.0.1:{port}/convex-url")
    (node,) = [pid for pid, command in children(process.pid).items() if "main.mjs" in command]
    os.kill(node, signal.SIGKILL)
    output, _ = process.communicate(timeout=PATIENCE)
    assert process.returncode == 1
    assert "The local Convex deployment exited (status -9)" in output
    for stopped in (url, f"http://127.0.0.1:{port}/convex-url"):
        with pytest.raises(httpx.TransportError):
            httpx.get(stopped)


def test_dev_uses_a_configured_deployment_as_is(run_flask: Runner) -> None:
    port = free_port()
    real = "https://happy-animal-123.convex.cloud"
    process = run_flask("convex", "dev", "--port", str(port), env={"CONVEX_URL": real})
    read_until(process, re.escape(f" * Convex:       {real} (CONVEX_URL)"))
    assert wait_for(f"http://127.0.0.1:{port}/convex-url").text == real
    ctrl_c(process)


@pytest.fixture
def admin_app(convex_deployment: LocalDeployment, convex_reset: None, tmp_path: Path) -> Flask:
    """An app whose admin commands act on the session deployment as CONVEX_URL."""
    app = Flask("admin_app", instance_path=str(tmp_path / "instance"))
    app.config |= {
        "CONVEX_URL": convex_deployment.url,
        "CONVEX_ADMIN_KEY": convex_deployment.admin_key,
    }
    app.cli.add_command(convex_cli)
    return app


def test_run_prints_the_result_and_fails_on_function_errors(admin_app: Flask) -> None:
    runner = admin_app.test_cli_runner()
    ran = runner.invoke(args=["convex", "run", "counter:increment", '{"name": "cli", "by": 3}'])
    assert (ran.exit_code, ran.stdout.strip()) == (0, "3.0")
    assert (
        runner.invoke(args=["convex", "run", "counter:secret"]).stdout.strip() == '"internal only"'
    )
    failed = runner.invoke(args=["convex", "run", "errors:plainError"])
    assert failed.exit_code == 1
    assert "Uncaught Error: boom" in failed.output
    bad = runner.invoke(args=["convex", "run", "counter:get", "[1"])
    assert bad.exit_code == 2
    assert "ARGS_JSON" in bad.output


def test_env_set_list_remove(admin_app: Flask, convex_deployment: LocalDeployment) -> None:
    runner = admin_app.test_cli_runner()
    assert runner.invoke(args=["convex", "env", "set", "MOOD", "calm"]).exit_code == 0
    assert "MOOD=calm" in runner.invoke(args=["convex", "env", "list"]).stdout.splitlines()
    assert call(convex_deployment.url, "query", "counter:env", {"name": "MOOD"})["value"] == "calm"
    assert runner.invoke(args=["convex", "env", "remove", "MOOD"]).exit_code == 0
    assert "MOOD=calm" not in runner.invoke(args=["convex", "env", "list"]).stdout
    refused = runner.invoke(args=["convex", "env", "set", "1BAD", "x"])
    assert refused.exit_code == 1
    assert "Invalid environment variable name" in refused.output


def test_admin_commands_need_a_key_or_a_running_local_deployment(tmp_path: Path) -> None:
    app = Flask("keyless", instance_path=str(tmp_path / "instance"))
    app.cli.add_command(convex_cli)
    runner = app.test_cli_runner()
    assert "No local deployment is running" in runner.invoke(args=["convex", "env", "list"]).output
    app.config["CONVEX_URL"] = "https://example.convex.cloud"
    assert "set CONVEX_ADMIN_KEY" in runner.invoke(args=["convex", "env", "list"]).output


def test_reset_wipes_only_the_running_local_deployment(
    run_flask: Runner, app_dir: Path, admin_app: Flask
) -> None:
    local = run_flask("convex", "local", "--convex-port", "0", "--no-watch")
    url = read_until(local, r"Convex local deployment: (http://\S+)").group(1)
    target = app_dir / "instance" / "convex-local.json"
    assert target.stat().st_mode & 0o077 == 0
    call(url, "mutation", "counter:addNote", {"text": "doomed"})
    reset = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "cliapp", "convex", "reset", "--yes"],
        cwd=app_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert reset.returncode == 0, reset.stderr
    assert call(url, "query", "counter:notes")["value"] == []
    remote = admin_app.test_cli_runner().invoke(args=["convex", "reset", "--yes"])
    assert "only wipes the local deployment" in remote.output
    assert ctrl_c(local) == 0
    assert not target.exists()


def test_dev_says_once_where_everything_is(run_flask: Runner, app_dir: Path) -> None:
    port = free_port()
    process = run_flask("convex", "dev", "--port", str(port), "--convex-port", "0")
    wait_for(f"http://127.0.0.1:{port}/convex-url")
    output = stop(process)
    convex = re.search(CONVEX_LINE, output)
    assert convex, output
    data_file = app_dir / "instance" / "convex-local.jsonl"
    site = re.search(r"^ \* HTTP actions: +(http://\S+)$", output, re.MULTILINE)
    assert site, output
    assert re.findall(r"^ \* (\w[\w ]*): +(.*)$", output, re.MULTILINE)[:4] == [
        ("App", f"http://127.0.0.1:{port}"),
        ("Convex", f"{convex.group(1)} (functions in {FUNCTIONS})"),
        ("HTTP actions", site.group(1)),
        ("Data", f"{data_file} (to start empty: stop, delete the file, start again)"),
    ]
    assert output.count(convex.group(1)) == output.count(str(data_file)) == 1


def test_dev_serves_http_actions_on_the_next_port_and_tells_the_app(run_flask: Runner) -> None:
    convex_port = free_port_and_the_next()
    port = free_port()
    process = run_flask("convex", "dev", "--port", str(port), "--convex-port", str(convex_port))
    site_url = wait_for(f"http://127.0.0.1:{port}/site-url").text
    assert site_url == f"http://127.0.0.1:{convex_port + 1}"
    assert httpx.get(f"{site_url}/env").json()["site"] == site_url
    ctrl_c(process)


def test_a_busy_site_port_names_its_own_option(run_flask: Runner) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        process = run_flask(
            "convex", "local", "--convex-port", "0", "--convex-site-port", str(busy)
        )
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert output.strip().splitlines() == [
        f"Error: Port {busy} of 127.0.0.1 is already in use (another local deployment?): "
        "choose another with --convex-site-port (0 picks a free one)"
    ]


def test_a_busy_convex_port_is_one_line_naming_the_option(run_flask: Runner) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        process = run_flask("convex", "dev", "--port", str(free_port()), "--convex-port", str(busy))
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert output.strip().splitlines() == [
        f"Error: Port {busy} of 127.0.0.1 is already in use (another local deployment?): "
        "choose another with --convex-port (0 picks a free one)"
    ]


def test_sigkill_of_dev_leaves_no_server_behind(run_flask: Runner) -> None:
    port = free_port()
    process = run_flask("convex", "dev", "--port", str(port), "--convex-port", "0")
    url = read_until(process, CONVEX_LINE).group(1)
    wait_for(f"http://127.0.0.1:{port}/convex-url")
    process.kill()  # the command alone, not its process group
    process.wait()
    for orphan in (url, f"http://127.0.0.1:{port}/convex-url"):
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                httpx.get(orphan)
            except httpx.TransportError:
                break
            assert time.monotonic() < deadline, f"{orphan} still answers"
            time.sleep(0.1)


def test_dev_prints_every_function_log_line_once(run_flask: Runner) -> None:
    port = free_port()
    process = run_flask("convex", "dev", "--port", str(port), "--convex-port", "0")
    assert wait_for(f"http://127.0.0.1:{port}/noisy").status_code == 200
    output = stop(process)
    # Flask's access log comes from another process and may land anywhere among them.
    printed = [line for line in output.splitlines() if line.startswith("[CONVEX ")]
    assert printed[:4] == [
        "[CONVEX Q(logs:noisy)] [LOG] 'hi' 1",
        "[CONVEX Q(logs:noisy)] [INFO] 'info line'",
        "[CONVEX Q(logs:noisy)] [WARN] 'warn line'",
        "[CONVEX Q(logs:noisy)] [ERROR] 'error line' { a: 1 }",
    ]
    assert output.count("warn line") == 1, "printed by the deployment and by Python logging"


def test_export_and_import_round_trip_a_snapshot(
    admin_app: Flask, convex_deployment: LocalDeployment, tmp_path: Path
) -> None:
    runner = admin_app.test_cli_runner()
    url = convex_deployment.url
    call(url, "mutation", "counter:addNote", {"text": "exported"})
    folder = tmp_path / "exports"
    folder.mkdir()
    exported = runner.invoke(args=["convex", "export", "--path", str(folder)])
    assert exported.exit_code == 0, exported.output
    [snapshot] = folder.glob("snapshot_*.zip")
    assert f"Downloaded snapshot export to {snapshot}" in exported.output
    convex_deployment.reset()
    imported = runner.invoke(args=["convex", "import", str(snapshot)])
    assert imported.exit_code == 0, imported.output
    assert "Added 1 documents." in imported.output
    assert call(url, "query", "counter:notes")["value"] == ["exported"]


def test_import_refuses_a_table_with_documents_and_asks_before_replacing(
    admin_app: Flask, convex_deployment: LocalDeployment, tmp_path: Path
) -> None:
    runner = admin_app.test_cli_runner()
    url = convex_deployment.url
    call(url, "mutation", "counter:addNote", {"text": "mine"})
    lines = tmp_path / "notes.jsonl"
    lines.write_text('{"text": "new"}\n')
    refused = runner.invoke(args=["convex", "import", str(lines), "--table", "notes"])
    assert refused.exit_code == 1
    assert "Table notes already exists" in refused.output
    declined = runner.invoke(
        args=["convex", "import", str(lines), "--table", "notes", "--replace"], input="n\n"
    )
    assert (declined.exit_code, "notes | 1      | 1 of 1 |" in declined.output) == (1, True)
    assert call(url, "query", "counter:notes")["value"] == ["mine"]
    replace = ["convex", "import", str(lines), "--table", "notes", "--replace", "--yes"]
    assert runner.invoke(args=replace).exit_code == 0
    appended = runner.invoke(args=["convex", "import", str(lines), "--table", "notes", "--append"])
    assert 'Added 1 documents to table "notes".' in appended.output
    assert call(url, "query", "counter:notes")["value"] == ["new", "new"]
    call(url, "mutation", "counter:increment", {"name": "other"})
    replace_all = ["convex", "import", str(lines), "--table", "notes", "--replace-all", "--yes"]
    assert runner.invoke(args=replace_all).exit_code == 0
    assert call(url, "query", "counter:get", {"name": "other"})["value"] == 0
    assert call(url, "query", "counter:notes")["value"] == ["new"]
    missing = runner.invoke(args=["convex", "import", str(lines)])
    assert (missing.exit_code, "--table is required" in missing.output) == (2, True)


def test_dev_typecheck_prints_type_errors_and_keeps_the_last_good_build(
    run_flask: Runner, app_dir: Path
) -> None:
    functions = app_dir / "convex"
    functions.mkdir()
    (functions / "tsconfig.json").write_text(
        '{"compilerOptions": {"strict": true, "module": "ESNext", "moduleResolution": "Bundler",'
        ' "target": "ESNext", "skipLibCheck": true}, "exclude": ["./_generated"]}'
    )
    source = functions / "greet.ts"

    def save(expression: str) -> None:
        source.write_text(
            'import { query } from "./_generated/server";\n'
            "export const hello = query({ args: {}, "
            f"handler: async (): Promise<string> => {expression} }});\n"
        )

    save('"first"')
    (app_dir / "cliapp.py").write_text(APP.format(functions=str(functions)))
    port = str(free_port())
    process = run_flask("convex", "dev", "--port", port, "--convex-port", "0", "--typecheck=enable")
    url = read_until(process, CONVEX_LINE).group(1)
    assert call(url, "query", "greet:hello")["value"] == "first"
    save("1")
    read_until(process, r"Build failed \(greet\.ts\); still serving the last good build:$")
    read_until(process, r"^TypeScript typecheck via `tsc` failed\.$")
    read_until(
        process, r"^convex/greet\.ts\(2,\d+\): error TS2322: Type 'number' is not assignable"
    )
    assert call(url, "query", "greet:hello")["value"] == "first"
    save('"fixed"')
    read_until(process, r"^\d\d:\d\d:\d\d Reloaded Convex functions \(greet\.ts\) in \d+ ms$")
    assert call(url, "query", "greet:hello")["value"] == "fixed"
    ctrl_c(process)


def test_dev_refuses_an_unknown_typecheck_mode(run_flask: Runner) -> None:
    process = run_flask("convex", "dev", "--typecheck", "always")
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert (
        "Invalid value for '--typecheck': 'always' is not one of 'enable', 'try', 'disable'"
        in output
    )


def test_logs_streams_function_logs_as_npx_convex_logs(
    app_dir: Path, convex_deployment: LocalDeployment
) -> None:
    def run_some() -> None:
        call(convex_deployment.url, "query", "logs:noisy")
        call(convex_deployment.url, "mutation", "logs:failingMutation")

    seen = streamed_until(
        [sys.executable, "-m", "flask", "--app", "cliapp", "convex", "logs", "--success"],
        run_some,
        re.escape("[CONVEX Q(logs:noisy)] [LOG] 'hi' 1"),
        re.escape("[CONVEX Q(logs:noisy)] [WARN] 'warn line'"),
        r"\[CONVEX Q\(logs:noisy\)\] Function executed in \d+ ms",
        re.escape("[CONVEX M(logs:failingMutation)] Uncaught Error: mutation failed"),
        cwd=app_dir,
        env={
            **os.environ,
            "CONVEX_URL": convex_deployment.url,
            "CONVEX_ADMIN_KEY": convex_deployment.admin_key,
        },
    )
    # Each execution's lines start with its local time, as `npx convex logs` prints them.
    line = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[CONVEX [QMAH]\(")
    assert line.match(seen), seen
    assert "M(logs:failingMutation)] Function executed" not in seen


HISTORY_JSONL = ("--history", "1", "--jsonl")


def test_logs_history_shows_recent_executions_and_jsonl_the_raw_entries(
    app_dir: Path, convex_deployment: LocalDeployment
) -> None:
    call(convex_deployment.url, "action", "logs:chattyAction")
    seen = streamed_until(
        [sys.executable, "-m", "flask", "--app", "cliapp", "convex", "logs", *HISTORY_JSONL],
        lambda: None,
        '"identifier": "logs:chattyAction"',
        cwd=app_dir,
        env={
            **os.environ,
            "CONVEX_URL": convex_deployment.url,
            "CONVEX_ADMIN_KEY": convex_deployment.admin_key,
        },
    )
    entry = json.loads(seen.splitlines()[0])
    assert entry["udfType"] == "Action"
    assert entry["logLines"] == ["[DEBUG] 'debug from an action'"]


def test_logs_with_a_wrong_admin_key_exits_saying_so(
    app_dir: Path, convex_deployment: LocalDeployment
) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "cliapp", "convex", "logs"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "CONVEX_URL": convex_deployment.url, "CONVEX_ADMIN_KEY": "wrong"},
        cwd=app_dir,
    )
    assert printed.returncode == 1
    assert "/api/stream_function_logs: HTTP 40" in printed.stderr
