"""``flask convex ...``: develop against a local Convex deployment.

``convex_cli`` is a click group the extension adds to ``app.cli``. Settings:

- ``CONVEX_FUNCTIONS_DIR``: the app's ``convex/`` directory (default:
  ``<app.root_path>/convex``, else ``./convex``);
- ``CONVEX_LOCAL_ENV``: a dict of environment variables for the functions,
  merged under ``--env KEY=VALUE`` options.

Data of the local deployment lives in ``<app.instance_path>/convex-local.jsonl``;
while it runs, ``convex-local.json`` beside it (readable by this user only) holds its
URL and admin key for ``flask convex run``, ``env``, ``import``, ``export`` and
``reset`` and ``logs``. Those act on ``CONVEX_URL`` instead when it is set, with the admin key
``CONVEX_ADMIN_KEY``; ``import`` and ``export`` speak the same endpoints as
``npx convex import/export``, so they work against a cloud deployment too.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import click
import httpx
from flask import Flask, current_app
from flask.cli import ScriptInfo, with_appcontext

from flask_convex.auth import current_issuer, rotate_key
from flask_convex.errors import ConvexConfigError
from flask_convex.local import (
    DEFAULT_PORT,
    TYPECHECK_MODES,
    LocalDeployment,
    LocalDeploymentError,
    PortInUseError,
    TypecheckMode,
    codegen,
    parse_env_pairs,
)

__all__ = ["convex_cli"]

LIFELINE_ENV: Final = "FLASK_CONVEX_LIFELINE"
"""Names the inherited pipe whose end of file tells the dev server to stop (see dev_server)."""

_ADMIN_TIMEOUT = 60.0
_ENV_QUERY = "_system/cli/queryEnvironmentVariables"


@click.group("convex", help="Convex tools: run a local deployment, develop against it.")
def convex_cli() -> None:
    pass


def _functions_dir(app: Flask) -> Path:
    configured = app.config.get("CONVEX_FUNCTIONS_DIR")
    if configured:
        return Path(configured)
    beside_app = Path(app.root_path) / "convex"
    return beside_app if beside_app.is_dir() else Path.cwd() / "convex"


def _issuer_env(app: Flask) -> dict[str, str]:
    """CONVEX_AUTH_* for a convex/auth.config.ts trusting the app's issuer, if it has one."""
    with app.app_context():
        try:
            return current_issuer().deployment_env()
        except ConvexConfigError:
            return {}


def _local_deployment(
    app: Flask,
    port: int,
    site_port: int | None,
    watch: bool,
    env: Iterable[str],
    typecheck: TypecheckMode,
) -> LocalDeployment:
    functions_env = _issuer_env(app) | dict(app.config.get("CONVEX_LOCAL_ENV") or {})
    try:
        functions_env |= parse_env_pairs(env)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--env") from error
    return LocalDeployment(
        _functions_dir(app),
        port=port,
        site_port=site_port,
        data_file=Path(app.instance_path) / "convex-local.jsonl",
        watch=watch,
        env=functions_env,
        echo=True,
        codegen=watch,
        python_api=_python_api(app) if watch else None,
        typecheck=typecheck,
    )


def _python_api(app: Flask) -> Path | None:
    configured = app.config.get("CONVEX_PYTHON_API", "")
    if configured is None:
        return None
    return Path(configured) if configured else Path(app.root_path) / "convex_api.py"


def _start_quietly(deployment: LocalDeployment, app: Flask) -> str:
    try:
        url = deployment.start()
    except PortInUseError as error:
        option = "--convex-port" if error.port == deployment.port else "--convex-site-port"
        raise click.ClickException(
            f"{error}: choose another with {option} (0 picks a free one)"
        ) from error
    except LocalDeploymentError as error:
        raise click.ClickException(str(error)) from error
    _record_target(_target_file(app), url, deployment.admin_key)
    return url


def _start(deployment: LocalDeployment, app: Flask) -> str:
    url = _start_quietly(deployment, app)
    click.echo(f"Convex local deployment: {url} (functions in {deployment.functions_dir})")
    click.echo(f"HTTP actions: {deployment.site_url}")
    return url


def _stop(deployment: LocalDeployment, app: Flask) -> None:
    deployment.stop()
    _target_file(app).unlink(missing_ok=True)


_port_option = click.option(
    "--convex-port",
    default=DEFAULT_PORT,
    show_default=True,
    help="Port of the local deployment (0 picks a free one).",
)
_site_port_option = click.option(
    "--convex-site-port",
    type=int,
    default=None,
    help="Port of the local deployment's HTTP actions (default: --convex-port + 1).",
)
_typecheck_option = click.option(
    "--typecheck",
    type=click.Choice(TYPECHECK_MODES),
    default="try",
    show_default=True,
    help="Check the functions with `tsc --noEmit` on every build, as `npx convex dev`: "
    "enable (needs convex/tsconfig.json), try (skipped without one) or disable. "
    "A type error fails the build; the last good one keeps serving.",
)
_env_option = click.option(
    "--env",
    multiple=True,
    metavar="KEY=VALUE",
    help="Environment variable for the functions; repeatable.",
)


@convex_cli.command("local")
@_port_option
@_site_port_option
@click.option("--watch/--no-watch", default=True, show_default=True, help="Rebuild on changes.")
@_env_option
@_typecheck_option
@with_appcontext
def local_command(
    convex_port: int,
    convex_site_port: int | None,
    watch: bool,
    env: tuple[str, ...],
    typecheck: TypecheckMode,
) -> None:
    """Run a local Convex deployment serving the app's functions until Ctrl-C."""
    deployment = _local_deployment(
        current_app, convex_port, convex_site_port, watch, env, typecheck
    )
    _start(deployment, current_app)
    try:
        deployment.wait()
    except KeyboardInterrupt:
        pass
    finally:
        _stop(deployment, current_app)


@convex_cli.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True, help="Flask dev server host.")
@click.option("--port", default=5000, show_default=True, help="Flask dev server port.")
@_port_option
@_site_port_option
@_env_option
@_typecheck_option
@click.pass_context
def dev_command(
    ctx: click.Context,
    host: str,
    port: int,
    convex_port: int,
    convex_site_port: int | None,
    env: tuple[str, ...],
    typecheck: TypecheckMode,
) -> None:
    """Run the Flask dev server against a local deployment (unless CONVEX_URL is set)."""
    info = ctx.ensure_object(ScriptInfo)
    app = info.load_app()
    child_env = dict(os.environ)
    deployment = None
    configured = app.config.get("CONVEX_URL") or os.environ.get("CONVEX_URL")
    banner = [("App", f"http://{_url_host(host)}:{port}")]
    if configured:
        banner.append(("Convex", f"{configured} (CONVEX_URL)"))
    else:
        deployment = _local_deployment(app, convex_port, convex_site_port, True, env, typecheck)
        child_env["CONVEX_URL"] = _start_quietly(deployment, app)
        child_env["CONVEX_SITE_URL"] = deployment.site_url
        banner += _local_banner(deployment)
    for label, value in banner:
        click.echo(f" * {label + ':':<14}{value}")
    # Never written: the children stop when it closes, whenever this process exits.
    lifeline, keep_open = os.pipe()
    child_env[LIFELINE_ENV] = str(lifeline)
    # Its own process group, so stopping it also stops the reloader's server process.
    server = subprocess.Popen(  # noqa: S603 (this Python, our module)
        _dev_server_command(info.app_import_path, host, port),
        env=child_env,
        start_new_session=True,
        pass_fds=(lifeline,),
    )
    os.close(lifeline)
    stop_server = functools.partial(os.killpg, server.pid, signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: stop_server())
    died: list[int] = []
    if deployment is not None:
        threading.Thread(
            target=_stop_with, args=(deployment, stop_server, died), daemon=True
        ).start()
    try:
        status = server.wait()
    except KeyboardInterrupt:
        stop_server()
        status = server.wait()
    finally:
        os.close(keep_open)
        if deployment is not None:
            _stop(deployment, app)
    if died:
        raise click.ClickException(
            f"The local Convex deployment exited (status {died[0]}), "
            "so the Flask server was stopped too"
        )
    ctx.exit(status)


def _stop_with(
    deployment: LocalDeployment, stop_server: Callable[[], None], died: list[int]
) -> None:
    """Wait for `deployment`; if it exits on its own, record its status and stop the server."""
    status = deployment.wait()
    # `stop` forgets the process first: an exit it caused is no failure.
    if deployment.pid is not None:
        died.append(status)
        with contextlib.suppress(ProcessLookupError):
            stop_server()


def _dev_server_command(app_import_path: str | None, host: str, port: int) -> list[str]:
    args = [sys.executable, "-m", "flask_convex.dev_server"]
    if app_import_path:
        args += ["--app", app_import_path]
    return [*args, "run", "--debug", "--host", host, "--port", str(port)]


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _local_banner(deployment: LocalDeployment) -> list[tuple[str, str]]:
    data = deployment.data_file
    return [
        ("Convex", f"{deployment.url} (functions in {deployment.functions_dir})"),
        ("HTTP actions", deployment.site_url),
        ("Data", f"{data} (to start empty: stop, delete the file, start again)"),
    ]


@convex_cli.command("codegen")
@_typecheck_option
@with_appcontext
def codegen_command(typecheck: TypecheckMode) -> None:
    """Write convex/_generated/ (as `npx convex codegen`) and the typed Python references."""
    functions_dir, python_api = _functions_dir(current_app), _python_api(current_app)
    try:
        click.echo(codegen(functions_dir, python_api, typecheck), nl=False)
    except LocalDeploymentError as error:
        raise click.ClickException(str(error)) from error


@convex_cli.command("auth-config")
@click.option("--oidc", is_flag=True, help="The OIDC form, read from /.well-known/ at run time.")
@click.option(
    "--inline",
    "inline_jwks",
    is_flag=True,
    help="Put the JWKS in the file as a data: URI, for deployments that cannot reach the app.",
)
@with_appcontext
def auth_config_command(oidc: bool, inline_jwks: bool) -> None:
    """Print the convex/auth.config.ts that makes a deployment accept this app's user tokens."""
    try:
        click.echo(current_issuer().auth_config(oidc=oidc, inline_jwks=inline_jwks), nl=False)
    except ConvexConfigError as error:
        raise click.ClickException(str(error)) from error


@convex_cli.command("rotate-key")
@with_appcontext
def rotate_key_command() -> None:
    """Replace the issuer's signing key; the old one stays published until its tokens expire."""
    try:
        kid = rotate_key()
    except ConvexConfigError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"New signing key {kid}. Restart the app to sign with it.")


def _target_file(app: Flask) -> Path:
    return Path(app.instance_path) / "convex-local.json"


def _record_target(path: Path, url: str, admin_key: str) -> None:
    """Tells later `flask convex run/env/reset` where the running local deployment is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Only this user may read the admin key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump({"url": url, "adminKey": admin_key}, file)


class _AdminError(click.ClickException):
    """An admin request that failed: unreachable (`status` None) or answered `status`."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class _Target:
    """A deployment the admin commands act on, with its admin key."""

    url: str
    admin_key: str
    local: bool

    def post(self, route: str, payload: dict[str, Any], **params: str) -> Any:
        """POSTs JSON `payload` to `route`; the JSON answer, which must be a 200."""
        return self.request("POST", route, json=payload, params=params).json()

    def request(self, method: str, route: str, **kwargs: Any) -> httpx.Response:
        """Sends an admin request (httpx arguments in `kwargs`); a non-200 answer exits 1."""
        headers = {"Authorization": f"Convex {self.admin_key}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", _ADMIN_TIMEOUT)
        try:
            response = httpx.request(method, f"{self.url}{route}", headers=headers, **kwargs)
        except httpx.HTTPError as error:
            raise _AdminError(f"Cannot reach the deployment at {self.url}: {error}") from error
        if response.status_code != 200:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise _AdminError(
                f"{self.url}{route}: HTTP {response.status_code}: {message}",
                status=response.status_code,
            )
        return response

    def call(self, route: str, path: str, args: dict[str, Any]) -> Any:
        """The value of a function, printing its logs to stderr; a function error exits 1."""
        body = self.post(route, {"path": path, "args": args, "format": "json"})
        for line in body.get("logLines") or []:
            click.echo(line, err=True)
        if body["status"] != "success":
            raise click.ClickException(body["errorMessage"])
        return body["value"]


def _target(app: Flask) -> _Target:
    """CONVEX_URL with CONVEX_ADMIN_KEY, else the local deployment `flask convex local/dev` runs."""
    url = app.config.get("CONVEX_URL") or os.environ.get("CONVEX_URL")
    if url:
        key = app.config.get("CONVEX_ADMIN_KEY") or os.environ.get("CONVEX_ADMIN_KEY")
        if not key:
            raise click.ClickException(
                f"CONVEX_URL is {url}: set CONVEX_ADMIN_KEY to its admin key "
                "(dashboard, Settings > URL and deploy key) to run admin commands against it"
            )
        return _Target(url.rstrip("/"), key, local=False)
    try:
        recorded = json.loads(_target_file(app).read_text())
    except FileNotFoundError:
        raise click.ClickException(
            "No local deployment is running: start `flask convex local` (or `flask convex dev`), "
            "or set CONVEX_URL and CONVEX_ADMIN_KEY"
        ) from None
    return _Target(recorded["url"], recorded["adminKey"], local=True)


@convex_cli.command("run")
@click.argument("function")
@click.argument("args_json", default="{}")
@with_appcontext
def run_command(function: str, args_json: str) -> None:
    """Run FUNCTION (e.g. messages:send, internal ones too) as admin; print its result as JSON."""
    try:
        args = json.loads(args_json)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="ARGS_JSON") from error
    if not isinstance(args, dict):
        raise click.BadParameter("must be a JSON object", param_hint="ARGS_JSON")
    value = _target(current_app).call("/api/function", function, args)
    click.echo(json.dumps(value, indent=2))


@convex_cli.group("env")
def env_group() -> None:
    """The functions' environment variables, like `npx convex env`."""


@env_group.command("list")
@with_appcontext
def env_list_command() -> None:
    """Print NAME=value for every variable."""
    variables = _target(current_app).call("/api/query", _ENV_QUERY, {})
    for variable in variables:
        click.echo(f"{variable['name']}={variable['value']}")


@env_group.command("set")
@click.argument("name")
@click.argument("value")
@with_appcontext
def env_set_command(name: str, value: str) -> None:
    """Set NAME to VALUE; functions see it at once."""
    _target(current_app).post(
        "/api/update_environment_variables", {"changes": [{"name": name, "value": value}]}
    )
    click.echo(f"Set {name}")


@env_group.command("remove")
@click.argument("name")
@with_appcontext
def env_remove_command(name: str) -> None:
    """Remove NAME."""
    _target(current_app).post(
        "/api/update_environment_variables", {"changes": [{"name": name, "value": None}]}
    )
    click.echo(f"Removed {name}")


@convex_cli.command("reset")
@click.confirmation_option(prompt="Delete every document of the local deployment?")
@with_appcontext
def reset_command() -> None:
    """Delete every document of the running local deployment."""
    target = _target(current_app)
    if not target.local:
        raise click.ClickException(
            "`flask convex reset` only wipes the local deployment, not CONVEX_URL"
        )
    target.post("/_flask_convex/reset", {})
    click.echo("Deleted every document")


_IMPORT_FORMATS: Final = {".csv": "csv", ".jsonl": "jsonLines", ".json": "jsonArray", ".zip": "zip"}
_IMPORT_QUERY = "_system/cli/queryImport"
_EXPORT_QUERY = "_system/cli/exports:getLatest"
# The convex CLI's part size: the backend takes an upload in parts.
_IMPORT_PART_BYTES = 5 * 1024 * 1024
_POLL_SECONDS = 0.5
_UTF8_BOM = b"\xef\xbb\xbf"


@convex_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--table", help="The table to import into (not for a .zip snapshot).")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(sorted(set(_IMPORT_FORMATS.values()))),
    help="The format of PATH (default: from its extension: .csv, .jsonl, .json, .zip).",
)
@click.option("--append", "mode", flag_value="append", help="Add to existing documents.")
@click.option(
    "--replace", "mode", flag_value="replace", help="Replace the documents of the imported tables."
)
@click.option(
    "--replace-all", "mode", flag_value="replaceAll", help="Replace every table's documents."
)
@click.option("-y", "--yes", is_flag=True, help="Do not ask before deleting documents.")
@with_appcontext
def import_command(
    path: Path, table: str | None, file_format: str | None, mode: str | None, yes: bool
) -> None:
    """Import PATH as `npx convex import` does: into an empty table unless --append/--replace."""
    file_format = file_format or _IMPORT_FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise click.BadParameter(
            "no format inferred from the extension: give --format", param_hint="PATH"
        )
    if (table is None) != (file_format == "zip"):
        raise click.UsageError(
            "--table is not allowed for a .zip snapshot"
            if table
            else f"--table is required for format {file_format}"
        )
    target = _target(current_app)
    import_id = target.post(
        "/api/import/finish_upload",
        {
            "import": {"tableName": table, "format": file_format, "mode": mode or "requireEmpty"},
            **_upload(target, path),
        },
    )["importId"]
    into = f' to table "{table}"' if table else ""
    state = _settled_import(target, import_id)
    if state["state"] == "waiting_for_confirmation":
        click.echo(state["message_to_confirm"])
        if state["require_manual_confirmation"] and not yes:
            click.confirm("Perform import?", default=True, abort=True)
        target.post("/api/perform_import", {"importId": import_id})
        state = _settled_import(target, import_id)
    if state["state"] != "completed":
        raise click.ClickException(
            f'Importing data from "{path}"{into} failed\n\n{state["error_message"]}'
        )
    click.echo(f"Added {state['num_rows_written']} documents{into}.")


def _upload(target: _Target, path: Path) -> dict[str, Any]:
    """Uploads `path` in parts; the `uploadToken` and `partTokens` that finish the upload."""
    token = target.post("/api/import/start_upload", {})["uploadToken"]
    parts: list[str] = []
    with path.open("rb") as file:
        while chunk := file.read(_IMPORT_PART_BYTES):
            if not parts and chunk.startswith(_UTF8_BOM):
                chunk = chunk[len(_UTF8_BOM) :]
            part = target.request(
                "POST",
                "/api/import/upload_part",
                params={"uploadToken": token, "partNumber": str(len(parts) + 1)},
                content=chunk,
                headers={"Content-Type": "application/octet-stream"},
            )
            parts.append(part.json())
    return {"uploadToken": token, "partTokens": parts}


def _settled_import(target: _Target, import_id: str) -> dict[str, Any]:
    """The import's state once it waits for confirmation, completed or failed."""
    done = ("waiting_for_confirmation", "completed", "failed")
    return _polled(
        lambda: target.call("/api/query", _IMPORT_QUERY, {"importId": import_id})["state"], done
    )


def _polled(read: Callable[[], dict[str, Any]], done: tuple[str, ...]) -> dict[str, Any]:
    """What `read` gives once its "state" is one of `done`, read every _POLL_SECONDS."""
    while (state := read())["state"] not in done:
        time.sleep(_POLL_SECONDS)
    return state


@convex_cli.command("export")
@click.option(
    "--path",
    "destination",
    required=True,
    type=click.Path(path_type=Path),
    help="The ZIP file to write, or a directory to write snapshot_<ts>.zip in.",
)
@click.option("--include-file-storage", is_flag=True, help="Include the stored files.")
@with_appcontext
def export_command(destination: Path, include_file_storage: bool) -> None:
    """Export every table (and stored files) to a ZIP snapshot, as `npx convex export`."""
    if destination.exists() and not destination.is_dir():
        raise click.ClickException(f"{destination} already exists")
    target = _target(current_app)
    target.post("/api/export/request/zip", {}, includeStorage=str(include_file_storage).lower())
    state = _polled(lambda: target.call("/api/query", _EXPORT_QUERY, {}), ("completed", "failed"))
    if state["state"] == "failed":
        raise click.ClickException(f"Export failed: {state.get('failure_reason', '')}")
    ts = state["start_ts"]
    click.echo(f"Created snapshot export at timestamp {ts}")
    if destination.is_dir():
        destination = destination / f"snapshot_{ts}.zip"
    destination.write_bytes(target.request("GET", f"/api/export/zip/{ts}").content)
    click.echo(f"Downloaded snapshot export to {destination}")


# The deployment holds a poll with nothing new for 60 s; a little longer is not a hang.
_LOGS_TIMEOUT = 75.0
_LOGS_MAX_BACKOFF = 16.0
_LOGS_QUIET_FAILURES = 5
_UDF_LETTERS = {"Query": "Q", "Mutation": "M", "Action": "A", "HttpAction": "H"}


@convex_cli.command("logs")
@click.option(
    "--history",
    type=click.IntRange(min=0),
    default=0,
    help="Show this many of the most recent executions first (default: only new ones).",
)
@click.option("--success", is_flag=True, help="Also print a line for each successful execution.")
@click.option("--jsonl", is_flag=True, help="Print each execution as the JSON the deployment sent.")
@with_appcontext
def logs_command(history: int, success: bool, jsonl: bool) -> None:
    """Stream the deployment's function logs, as `npx convex logs`, until interrupted."""
    target = _target(current_app)
    click.echo(f"Watching logs of {target.url}...", err=True)
    cursor: float = 0
    failures = 0
    first = True
    while True:
        try:
            answer = target.request(
                "GET",
                "/api/stream_function_logs",
                params={"cursor": repr(cursor)},
                timeout=_LOGS_TIMEOUT,
            ).json()
        except _AdminError as error:
            if error.status is not None and error.status < 500:
                raise  # a refused key or request: retrying cannot help
            failures += 1
            backoff = min(0.5 * 2**failures, _LOGS_MAX_BACKOFF)
            if failures > _LOGS_QUIET_FAILURES:
                click.echo(
                    f"Failed to fetch logs ({error.message}); retrying in {backoff:g} s", err=True
                )
            time.sleep(backoff)
            continue
        failures = 0
        cursor = answer["newCursor"]
        entries: list[dict[str, Any]] = answer["entries"]
        if first:
            first = False
            entries = entries[-history:] if history else []
        for entry in entries:
            for line in _log_lines(entry, success=success, jsonl=jsonl):
                click.echo(line)


def _log_lines(entry: dict[str, Any], *, success: bool, jsonl: bool) -> list[str]:
    """The lines `npx convex logs` prints for one execution of the stream."""
    if jsonl:
        return [json.dumps(entry)]
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["timestamp"]))
    prefix = f"{when} [CONVEX {_UDF_LETTERS.get(entry['udfType'], '?')}({entry['identifier']})]"
    # "[LEVEL] text" strings: a deployment sends structured lines only to clients naming
    # themselves the convex CLI or dashboard.
    lines = [f"{prefix} {line}" for line in entry.get("logLines") or []]
    if entry.get("error"):
        lines.append(f"{prefix} {entry['error']}")
    elif success and entry.get("kind") == "Completion":
        lines.append(f"{prefix} Function executed in {math.ceil(entry['executionTime'] * 1000)} ms")
    return lines
