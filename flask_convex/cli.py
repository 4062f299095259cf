"""``flask convex ...``: develop against a local Convex deployment.

``convex_cli`` is a click group the extension adds to ``app.cli``. Settings:

- ``CONVEX_FUNCTIONS_DIR``: the app's ``convex/`` directory (default:
  ``<app.root_path>/convex``, else ``./convex``);
- ``CONVEX_LOCAL_ENV``: a dict of environment variables for the functions,
  merged under ``--env KEY=VALUE`` options.

Data of the local deployment lives in ``<app.instance_path>/convex-local.jsonl``.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo, with_appcontext

from flask_convex.auth import current_issuer, rotate_key
from flask_convex.errors import ConvexConfigError
from flask_convex.local import (
    DEFAULT_PORT,
    LocalDeployment,
    LocalDeploymentError,
    PortInUseError,
    parse_env_pairs,
)

__all__ = ["convex_cli"]

LIFELINE_ENV: Final = "FLASK_CONVEX_LIFELINE"
"""Names the inherited pipe whose end of file tells the dev server to stop (see dev_server)."""


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


def _local_deployment(app: Flask, port: int, watch: bool, env: Iterable[str]) -> LocalDeployment:
    functions_env = _issuer_env(app) | dict(app.config.get("CONVEX_LOCAL_ENV") or {})
    try:
        functions_env |= parse_env_pairs(env)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--env") from error
    return LocalDeployment(
        _functions_dir(app),
        port=port,
        data_file=Path(app.instance_path) / "convex-local.jsonl",
        watch=watch,
        env=functions_env,
        echo=True,
    )


def _start_quietly(deployment: LocalDeployment) -> str:
    try:
        return deployment.start()
    except PortInUseError as error:
        raise click.ClickException(
            f"{error}: choose another with --convex-port (0 picks a free one)"
        ) from error
    except LocalDeploymentError as error:
        raise click.ClickException(str(error)) from error


def _start(deployment: LocalDeployment) -> str:
    url = _start_quietly(deployment)
    click.echo(f"Convex local deployment: {url} (functions in {deployment.functions_dir})")
    return url


_port_option = click.option(
    "--convex-port",
    default=DEFAULT_PORT,
    show_default=True,
    help="Port of the local deployment (0 picks a free one).",
)
_env_option = click.option(
    "--env",
    multiple=True,
    metavar="KEY=VALUE",
    help="Environment variable for the functions; repeatable.",
)


@convex_cli.command("local")
@_port_option
@click.option("--watch/--no-watch", default=True, show_default=True, help="Rebuild on changes.")
@_env_option
@with_appcontext
def local_command(convex_port: int, watch: bool, env: tuple[str, ...]) -> None:
    """Run a local Convex deployment serving the app's functions until Ctrl-C."""
    deployment = _local_deployment(current_app, convex_port, watch, env)
    _start(deployment)
    try:
        deployment.wait()
    except KeyboardInterrupt:
        pass
    finally:
        deployment.stop()


@convex_cli.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True, help="Flask dev server host.")
@click.option("--port", default=5000, show_default=True, help="Flask dev server port.")
@_port_option
@_env_option
@click.pass_context
def dev_command(
    ctx: click.Context, host: str, port: int, convex_port: int, env: tuple[str, ...]
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
        deployment = _local_deployment(app, convex_port, True, env)
        child_env["CONVEX_URL"] = _start_quietly(deployment)
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
    try:
        status = server.wait()
    except KeyboardInterrupt:
        stop_server()
        status = server.wait()
    finally:
        os.close(keep_open)
        if deployment is not None:
            deployment.stop()
    ctx.exit(status)


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
        ("Data", f"{data} (to start empty: stop, delete the file, start again)"),
    ]


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
