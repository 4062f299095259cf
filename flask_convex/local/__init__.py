"""A local Convex deployment for development and tests.

It runs an app's real ``convex/*.ts`` functions on the official ``convex-test``
runtime behind a small Node server that speaks the Convex HTTP API and sync
WebSocket, so the official clients (and flask-convex) work against it
unchanged. Node.js and npm must be installed; the server's npm dependencies are
installed once into a cache directory on first use.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Literal, Self, get_args

import httpx

__all__ = [
    "LocalDeployment",
    "LocalDeploymentError",
    "PortInUseError",
    "TypecheckMode",
    "install_server",
]

SERVER_SOURCE = Path(__file__).parent / "server"
_READY = re.compile(r"ready at (http://\S+) \(HTTP actions at (http://\S+)\)")
_PORT_IN_USE = re.compile(r"^port in use: (\d+)$")
_RECENT_OUTPUT_LINES = 200
_EXIT_PORT_IN_USE = 3  # main.mjs's EXIT_PORT_IN_USE

DEFAULT_PORT = 3210
"""The port `python -m flask_convex.local` and `flask convex` serve on unless told otherwise."""

TypecheckMode = Literal["enable", "try", "disable"]
"""When `tsc --noEmit` checks the functions, as `npx convex dev --typecheck`.

``enable`` fails without ``convex/tsconfig.json``; ``try`` skips such an app;
either way a type error fails the build, so the last good one keeps serving.
"""

TYPECHECK_MODES: Final[tuple[TypecheckMode, ...]] = get_args(TypecheckMode)


def parse_env_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict, later keys winning; the value may be empty.

    Raises ValueError naming the first pair without an ``=`` or with an empty key.
    """
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def codegen(
    functions_dir: str | os.PathLike[str],
    python_api: str | os.PathLike[str] | None,
    typecheck: TypecheckMode = "try",
) -> str:
    """Writes ``functions_dir/_generated/`` and the typed Python module once; returns its report.

    Then type checks the functions as `typecheck` says. Raises
    LocalDeploymentError with the build or type error when they fail.
    """
    command = [
        _require("node"),
        str(install_server() / "codegen-cli.mjs"),
        "--functions",
        str(functions_dir),
        "--typecheck",
        typecheck,
    ]
    if python_api is not None:
        command += ["--python-api", str(python_api)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise LocalDeploymentError(result.stderr.strip())
    return result.stdout


class LocalDeploymentError(RuntimeError):
    """The local deployment could not be installed or started."""


class PortInUseError(LocalDeploymentError):
    """The port the local deployment was asked to serve on is taken."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"Port {port} of {host} is already in use (another local deployment?)")
        self.host = host
        self.port = port


def _cache_root() -> Path:
    configured = os.environ.get("FLASK_CONVEX_CACHE")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "flask-convex"


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise LocalDeploymentError(
            f"`{tool}` was not found on PATH. The local Convex deployment needs Node.js 20 "
            "or newer with npm: install them (e.g. `apt-get install nodejs npm`, or from "
            "nodejs.org), or set CONVEX_URL to a real deployment instead."
        )
    return found


def _server_files() -> list[Path]:
    return sorted(
        path
        for path in SERVER_SOURCE.iterdir()
        if path.suffix == ".mjs" or path.name in ("package.json", "package-lock.json")
    )


def install_server() -> Path:
    """Returns a directory holding the server with its npm dependencies installed.

    The directory is keyed by a hash of the server's sources and lockfile, so
    an upgrade installs afresh; a file lock keeps concurrent processes from
    installing at once.
    """
    files = _server_files()
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    root = _cache_root()
    target = root / f"local-{digest.hexdigest()[:16]}"
    marker = target / ".installed"
    if marker.exists():
        return target
    npm = _require("npm")
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return target
        staging = root / f"{target.name}.staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for path in files:
            shutil.copy2(path, staging / path.name)
        result = subprocess.run(  # noqa: S603 (our own npm, fixed arguments)
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=staging,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise LocalDeploymentError(
                f"`npm ci` failed installing the local deployment:\n{result.stderr.strip()}"
            )
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        marker.touch()
    return target


class LocalDeployment:
    """One local Convex deployment process serving ``functions_dir``.

    ``port=0`` picks a free port. HTTP actions are served on ``site_port``,
    by default ``port + 1`` as with Convex's own local backend (any free port
    when ``port=0``). ``data_file`` keeps committed data across
    restarts (``None`` keeps it in memory). ``watch`` rebuilds when a source
    file changes. ``env`` is what functions see as ``process.env`` (like
    ``npx convex env set``). ``admin_key`` is what ``Authorization: Convex
    <key>`` must carry (a random one when not given; resetting needs it too).
    ``echo`` copies the server's output to stderr. ``codegen`` writes
    ``functions_dir/_generated/`` before every build and ``python_api`` the
    typed Python module after it, as ``flask convex codegen``; ``typecheck``
    then runs ``tsc`` on every build (see TypecheckMode).
    """

    def __init__(
        self,
        functions_dir: str | os.PathLike[str],
        *,
        port: int = 0,
        site_port: int | None = None,
        host: str = "127.0.0.1",
        data_file: str | os.PathLike[str] | None = None,
        watch: bool = False,
        env: Mapping[str, str] | None = None,
        admin_key: str | None = None,
        ping_interval: float | None = None,
        echo: bool = False,
        codegen: bool = False,
        python_api: str | os.PathLike[str] | None = None,
        typecheck: TypecheckMode = "disable",
        startup_timeout: float = 60.0,
    ) -> None:
        self.functions_dir = Path(functions_dir).resolve()
        self.port = port
        self.site_port = site_port
        self.host = host
        self.data_file = Path(data_file).resolve() if data_file is not None else None
        self.watch = watch
        self.env = dict(env or {})
        self.admin_key = admin_key or secrets.token_urlsafe(32)
        self.ping_interval = ping_interval
        self.echo = echo
        self.codegen = codegen
        self.python_api = Path(python_api).resolve() if python_api is not None else None
        self.typecheck: TypecheckMode = typecheck
        self.startup_timeout = startup_timeout
        self.output: collections.deque[str] = collections.deque(maxlen=_RECENT_OUTPUT_LINES)
        self._url: str | None = None
        self._site_url: str | None = None
        self._ready = threading.Event()
        self._process: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """The deployment URL, e.g. ``http://127.0.0.1:3210``; only once started."""
        if self._url is None:
            raise LocalDeploymentError("The local deployment is not running; call start() first")
        return self._url

    @property
    def site_url(self) -> str:
        """Where ``convex/http.ts`` is served (a cloud deployment's ``.convex.site``)."""
        if self._site_url is None:
            raise LocalDeploymentError("The local deployment is not running; call start() first")
        return self._site_url

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def _command(self, server: Path) -> list[str]:
        command = [
            _require("node"),
            str(server / "main.mjs"),
            "--functions",
            str(self.functions_dir),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--exit-with-stdin",
        ]
        if self.site_port is not None:
            command += ["--site-port", str(self.site_port)]
        if self.data_file is not None:
            command += ["--data", str(self.data_file)]
        if self.watch:
            command.append("--watch")
        if self.codegen:
            command.append("--codegen")
        if self.python_api is not None:
            command += ["--python-api", str(self.python_api)]
        if self.typecheck != "disable":
            command += ["--typecheck", self.typecheck]
        if self.ping_interval is not None:
            command += ["--ping-interval-ms", str(int(self.ping_interval * 1000))]
        for key, value in self.env.items():
            command += ["--env", f"{key}={value}"]
        return command

    def start(self) -> str:
        """Starts the server and returns its URL once it answers requests."""
        if self._process is not None:
            return self.url
        command = self._command(install_server())
        self._ready.clear()
        process = self._process = subprocess.Popen(  # noqa: S603 (node and our server)
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            # The admin key goes in the environment, not argv (visible in `ps`).
            env={**os.environ, "FLASK_CONVEX_ADMIN_KEY": self.admin_key},
            # Out of the terminal's process group: a Ctrl-C stops the launcher, which
            # stops the server, so an exit of the server's own is always a failure.
            start_new_session=True,
        )
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (process.stdout, process.stderr)
            if stream is not None
        ]
        for reader in self._readers:
            reader.start()
        threading.Thread(target=self._wake_on_exit, args=(process,), daemon=True).start()
        try:
            ready = self._ready.wait(self.startup_timeout)
        except BaseException:
            # A Ctrl-C while it builds: in its own session, nothing else stops it.
            self.stop()
            raise
        if not ready or self._url is None:
            recent = "\n".join(self.output)
            status = process.poll()
            self.stop()
            if status == _EXIT_PORT_IN_USE:
                raise PortInUseError(self.host, self._busy_port())
            raise LocalDeploymentError(f"The local Convex deployment did not start:\n{recent}")
        return self._url

    def _busy_port(self) -> int:
        for line in reversed(self.output):
            match = _PORT_IN_USE.match(line)
            if match:
                return int(match.group(1))
        return self.port

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                self.output.append(line.rstrip("\n"))
                match = _READY.search(line)
                if match and self._url is None:
                    self._url, self._site_url = match.groups()
                    self._ready.set()
                elif self.echo and not _PORT_IN_USE.match(line):
                    sys.stderr.write(line)

    def _wake_on_exit(self, process: subprocess.Popen[str]) -> None:
        process.wait()
        for reader in self._readers:
            reader.join()
        self._ready.set()

    def wait(self) -> int:
        """Blocks until the server exits; returns its exit status."""
        if self._process is None:
            return 0
        return self._process.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops the server and what it started: SIGTERM, then SIGKILL if it lingers."""
        process, self._process = self._process, None
        self._url = self._site_url = None
        if process is None:
            return
        if process.poll() is None:
            # The whole process group it leads: the type checker it runs too.
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for reader in self._readers:
            reader.join(timeout)
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()

    @property
    def admin_headers(self) -> dict[str, str]:
        """The ``Authorization`` header of an admin request to this deployment."""
        return {"Authorization": f"Convex {self.admin_key}"}

    def trust_issuer(self, issuer: str, jwks: Mapping[str, Any]) -> None:
        """Verifies tokens of `issuer` with `jwks` instead of fetching the keys its provider names.

        auth.config.ts still decides which issuers are trusted; this only hands
        the keys over, so tests need no server publishing them. Kept across reloads.
        """
        response = httpx.post(
            f"{self.url}/_flask_convex/trust_issuer",
            json={"issuer": issuer, "jwks": dict(jwks)},
            headers=self.admin_headers,
        )
        response.raise_for_status()

    def reset(self) -> None:
        """Deletes all data; subscribers see the change like any other commit."""
        response = httpx.post(f"{self.url}/_flask_convex/reset", headers=self.admin_headers)
        response.raise_for_status()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
