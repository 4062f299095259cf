"""The launcher and the server's lifecycle: start, stop, restarts, crashes, reloads."""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _local import call, decode_ts, eventually
from joserfc.jwk import RSAKey

from flask_convex.local import (
    SERVER_SOURCE,
    LocalDeployment,
    LocalDeploymentError,
    install_server,
)

pytestmark = pytest.mark.integration


def query_ts(url: str) -> int:
    return decode_ts(httpx.post(f"{url}/api/query_ts").json()["ts"])


def test_start_serves_on_a_free_port_and_sigterm_exits_cleanly(convex_functions_dir: Path) -> None:
    deployment = LocalDeployment(convex_functions_dir)
    url = deployment.start()
    assert url.startswith("http://127.0.0.1:")
    assert deployment.url == url
    assert call(url, "query", "values:echo", {"value": "up"})["value"] == "up"
    assert deployment.pid is not None
    os.kill(deployment.pid, signal.SIGTERM)
    assert deployment.wait() == 0
    deployment.stop()
    with pytest.raises(LocalDeploymentError, match="not running"):
        deployment.url  # noqa: B018


def test_a_start_interrupted_by_ctrl_c_leaves_no_server_behind(
    convex_functions_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[subprocess.Popen[str]] = []
    popen = subprocess.Popen

    def recorded(*args: Any, **kwargs: Any) -> subprocess.Popen[str]:
        process = popen(*args, **kwargs)
        started.append(process)
        return process

    class CtrlC(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            raise KeyboardInterrupt

    deployment = LocalDeployment(convex_functions_dir)
    monkeypatch.setattr(deployment, "_ready", CtrlC())
    monkeypatch.setattr(subprocess, "Popen", recorded)
    with pytest.raises(KeyboardInterrupt):
        deployment.start()
    (process,) = started
    assert process.poll() is not None, "the server it started still runs"
    assert deployment.pid is None


def test_missing_node_or_npm_is_explained(
    convex_functions_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("FLASK_CONVEX_CACHE", str(tmp_path / "cache"))
    with pytest.raises(LocalDeploymentError, match=r"`npm` was not found.*Node\.js 20"):
        LocalDeployment(convex_functions_dir).start()


def test_missing_node_is_explained_once_installed(
    convex_functions_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_server()
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalDeploymentError, match="`node` was not found"):
        LocalDeployment(convex_functions_dir).start()


def test_a_broken_functions_directory_fails_start_with_the_build_error(tmp_path: Path) -> None:
    (tmp_path / "broken.ts").write_text("export const x = ;\n")
    with pytest.raises(LocalDeploymentError, match=r"broken\.ts"):
        LocalDeployment(tmp_path).start()


def test_node_builtins_need_use_node(tmp_path: Path) -> None:
    (tmp_path / "files.ts").write_text(
        'import { readFileSync } from "node:fs";\n'
        'import { queryGeneric } from "convex/server";\n'
        "export const read = queryGeneric({ args: {}, handler: async () => "
        'readFileSync("/etc/hostname", "utf8") });\n'
    )
    with pytest.raises(LocalDeploymentError) as refused:
        LocalDeployment(tmp_path).start()
    assert 'Could not resolve "node:fs"' in str(refused.value)
    assert 'using Node APIs from a file without the "use node" directive' in str(refused.value)


def test_a_use_node_file_may_export_only_actions(tmp_path: Path) -> None:
    (tmp_path / "files.ts").write_text(
        '"use node";\n'
        'import { readFileSync } from "node:fs";\n'
        'import { actionGeneric, queryGeneric } from "convex/server";\n'
        "export const hostname = actionGeneric({ args: {}, handler: async () => "
        'readFileSync("/etc/hostname", "utf8") });\n'
        "export const list = queryGeneric({ args: {}, handler: async () => [] });\n"
    )
    with pytest.raises(LocalDeploymentError) as refused:
        LocalDeployment(tmp_path).start()
    assert (
        "`list` defined in `files.js` is a Query function. Only actions can be defined in Node.js."
        in str(refused.value)
    )
    (tmp_path / "files.ts").write_text(
        (tmp_path / "files.ts").read_text().replace("export const list", "const list")
    )
    with LocalDeployment(tmp_path) as deployment:
        assert call(deployment.url, "action", "files:hostname")["status"] == "success"


def test_data_survives_restart_and_timestamps_keep_increasing(
    convex_functions_dir: Path, tmp_path: Path
) -> None:
    data_file = tmp_path / "data.jsonl"
    with LocalDeployment(convex_functions_dir, data_file=data_file) as first:
        for _ in range(3):
            call(first.url, "mutation", "counter:increment", {"name": "r"})
        last_ts = query_ts(first.url)
    with LocalDeployment(convex_functions_dir, data_file=data_file) as second:
        assert call(second.url, "query", "counter:get", {"name": "r"})["value"] == 3.0
        assert query_ts(second.url) > last_ts
        call(second.url, "mutation", "counter:increment", {"name": "r"})
        assert query_ts(second.url) > last_ts


def test_kill_9_loses_no_acknowledged_commit(convex_functions_dir: Path, tmp_path: Path) -> None:
    data_file = tmp_path / "data.jsonl"
    crashed = LocalDeployment(convex_functions_dir, data_file=data_file)
    crashed.start()
    for index in range(20):
        call(crashed.url, "mutation", "counter:addNote", {"text": f"note {index}"})
    crashed_ts = query_ts(crashed.url)
    assert crashed.pid is not None
    os.kill(crashed.pid, signal.SIGKILL)
    crashed.wait()
    crashed.stop()
    with data_file.open("a") as torn:  # a commit cut short by the crash
        torn.write('{"ts": "99", "writes": {"12')
    with LocalDeployment(convex_functions_dir, data_file=data_file) as restarted:
        notes = call(restarted.url, "query", "counter:notes")["value"]
        assert notes == [f"note {index}" for index in range(20)]
        assert query_ts(restarted.url) > crashed_ts
        new_id = call(restarted.url, "mutation", "counter:addNote", {"text": "after"})["value"]
        assert new_id not in json.dumps(notes)


def test_a_second_deployment_on_the_same_data_file_is_refused(
    convex_functions_dir: Path, tmp_path: Path
) -> None:
    data_file = tmp_path / "data.jsonl"
    with LocalDeployment(convex_functions_dir, data_file=data_file) as owner:
        second = LocalDeployment(convex_functions_dir, data_file=data_file)
        with pytest.raises(LocalDeploymentError, match=rf"in use .*\(pid {owner.pid}\)"):
            second.start()
        call(owner.url, "mutation", "counter:addNote", {"text": "kept"})
        pid = owner.pid
    assert pid is not None
    # Released on stop, and a lock left by a killed owner is taken over.
    killed = LocalDeployment(convex_functions_dir, data_file=data_file)
    killed.start()
    assert killed.pid is not None
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    killed.stop()
    with LocalDeployment(convex_functions_dir, data_file=data_file) as restarted:
        assert call(restarted.url, "query", "counter:notes")["value"] == ["kept"]


def test_reset_wipes_the_data_file_too(convex_functions_dir: Path, tmp_path: Path) -> None:
    data_file = tmp_path / "data.jsonl"
    with LocalDeployment(convex_functions_dir, data_file=data_file) as deployment:
        call(deployment.url, "mutation", "counter:addNote", {"text": "gone"})
        deployment.reset()
    with LocalDeployment(convex_functions_dir, data_file=data_file) as deployment:
        assert call(deployment.url, "query", "counter:notes")["value"] == []


def test_watch_reloads_and_a_failed_build_keeps_the_last_good_one(
    convex_functions_dir: Path, tmp_path: Path
) -> None:
    functions = tmp_path / "convex"
    shutil.copytree(convex_functions_dir, functions)
    source = functions / "values.ts"
    original = source.read_text()
    status = lambda url: httpx.get(f"{url}/_flask_convex/status").json()  # noqa: E731
    with LocalDeployment(functions, watch=True) as deployment:
        default = lambda: call(deployment.url, "query", "values")["value"]  # noqa: E731
        assert default() == "default export"
        source.write_text(original.replace('"default export"', '"edited"'))
        eventually(lambda: default() == "edited")
        source.write_text(original + "\nexport const broken = ;\n")
        eventually(lambda: status(deployment.url)["buildError"] is not None)
        assert "values.ts" in status(deployment.url)["buildError"]
        assert default() == "edited"
        eventually(lambda: any("Build failed" in line for line in deployment.output))
        source.write_text(original)
        eventually(lambda: default() == "default export")
        assert status(deployment.url)["buildError"] is None


def test_admin_key_runs_internal_functions_and_acts_as_users(
    convex_functions_dir: Path,
) -> None:
    with LocalDeployment(convex_functions_dir, admin_key="local-admin") as deployment:
        url = deployment.url
        admin = {"Authorization": "Convex local-admin"}
        response = httpx.post(
            f"{url}/api/function", json={"path": "counter:secret", "args": {}}, headers=admin
        )
        assert response.json() == {"status": "success", "value": "internal only"}
        assert call(url, "query", "counter:secret", headers=admin)["value"] == "internal only"
        wrong = httpx.post(
            f"{url}/api/query",
            json={"path": "values:echo", "args": {}},
            headers={"Authorization": "Convex wrong"},
        )
        assert (wrong.status_code, wrong.json()["code"]) == (401, "BadAdminKey")
        acting = base64.b64encode(json.dumps({"issuer": "https://i", "subject": "s"}).encode())
        identity = call(
            url,
            "query",
            "identity:whoami",
            headers={"Authorization": f"Convex local-admin:{acting.decode()}"},
        )["value"]
        assert identity["tokenIdentifier"] == "https://i|s"


def test_runtime_versions_are_pinned_exactly() -> None:
    manifest = json.loads((SERVER_SOURCE / "package.json").read_text())
    lock = json.loads((SERVER_SOURCE / "package-lock.json").read_text())
    assert manifest["dependencies"]["convex-test"] == "0.0.60"
    assert manifest["dependencies"]["convex"] == "1.48.0"
    for name, version in manifest["dependencies"].items():
        assert version[0].isdigit(), f"{name} must be pinned exactly, not {version}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


class KeyServer(http.server.ThreadingHTTPServer):
    """Publishes a JWKS and an OIDC discovery document, counting JWKS fetches."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), KeyHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.keys: list[RSAKey] = []
        self.jwks_fetches = 0


class KeyHandler(http.server.BaseHTTPRequestHandler):
    server: KeyServer

    def do_GET(self) -> None:
        if self.path == "/jwks.json":
            self.server.jwks_fetches += 1
            document: Any = {"keys": [key.as_dict(private=False) for key in self.server.keys]}
        elif self.path == "/oidc/.well-known/openid-configuration":
            document = {
                "issuer": f"{self.server.url}/oidc",
                "authorization_endpoint": f"{self.server.url}/oidc/authorize",
                "jwks_uri": f"{self.server.url}/jwks.json",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        else:
            self.send_error(404)
            return
        body = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_remote_jwks_is_cached_refetched_on_new_kid_and_oidc_discovered(
    convex_functions_dir: Path, mint_token: Callable[..., str]
) -> None:
    keys = KeyServer()
    threading.Thread(target=keys.serve_forever, daemon=True).start()
    first, second = (
        RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256"}) for kid in "ab"
    )
    keys.keys = [first]
    env = {
        "TEST_AUTH_ISSUER": f"{keys.url}/custom",
        "TEST_AUTH_JWKS": f"{keys.url}/jwks.json",
        "TEST_AUTH_APPLICATION_ID": "app",
        "TEST_OIDC_DOMAIN": f"{keys.url}/oidc",
    }

    def whoami(token: str) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        return call(deployment.url, "query", "identity:whoami", headers=headers)["value"]

    try:
        with LocalDeployment(convex_functions_dir, env=env) as deployment:
            custom = {"iss": f"{keys.url}/custom", "aud": "app"}
            assert whoami(mint_token("u1", key=first, **custom))["subject"] == "u1"
            assert whoami(mint_token("u2", key=first, **custom))["subject"] == "u2"
            assert keys.jwks_fetches == 1
            keys.keys = [second]  # the issuer rotates its key
            assert whoami(mint_token("u3", key=second, **custom))["subject"] == "u3"
            oidc = {"iss": f"{keys.url}/oidc", "aud": "app", "given_name": "Ann"}
            identity = whoami(mint_token("u4", key=second, **oidc))
            assert identity["tokenIdentifier"] == f"{keys.url}/oidc|u4"
            assert identity["givenName"] == "Ann"
    finally:
        keys.shutdown()
        keys.server_close()


def test_module_entry_point_prints_the_url_and_exits_on_sigterm(
    convex_functions_dir: Path, tmp_path: Path
) -> None:
    data_file = tmp_path / "data.jsonl"
    command = [sys.executable, "-m", "flask_convex.local", "--functions", str(convex_functions_dir)]
    command += ["--port", "0", "--data", str(data_file), "--env", "GREETING=cli"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as cli:
        assert cli.stdout is not None
        url = cli.stdout.readline().strip()
        assert call(url, "query", "counter:env", {"name": "GREETING"})["value"] == "cli"
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=10) == 0
    assert data_file.exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(url)
