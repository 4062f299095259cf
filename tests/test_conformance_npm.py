"""The official npm `convex` clients, unmodified, against the local deployment.

The scenarios live in tests/conformance/*.mjs and load `convex` from the
local deployment's installed server, so they test the version it pins.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flask_convex.local import install_server

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).parent / "conformance"


def run_scenario(script: str, url: str, token: str) -> dict[str, Any]:
    result = subprocess.run(
        ["node", str(SCRIPTS / script), url, token],
        env={**os.environ, "FLASK_CONVEX_SERVER_DIR": str(install_server())},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    findings: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return findings


@pytest.fixture
def identity_of(convex_env: dict[str, str]) -> Callable[[str], dict[str, str]]:
    issuer = convex_env["TEST_AUTH_ISSUER"]
    return lambda subject: {
        "tokenIdentifier": f"{issuer}|{subject}",
        "subject": subject,
        "issuer": issuer,
    }


def test_http_client(
    convex_url: str,
    mint_token: Callable[..., str],
    identity_of: Callable[[str], dict[str, str]],
) -> None:
    findings = run_scenario("http_client.mjs", convex_url, mint_token("dan"))
    assert findings["floatsAreSpecial"] is True
    assert findings["floats"]["five"] == 5
    assert findings["sum"] == f"{2**62 + 5}n"
    assert findings["bytes"] == [1, 2, 3]
    assert findings["defaultExport"] == "default export"
    assert (findings["increment"], findings["action"], findings["consistent"]) == (2, 3, 3)
    assert findings["convexError"] == {
        "isConvexError": True,
        "data": {"code": "BOOM", "count": "2n", "detail": ["a", 1.5]},
    }
    assert findings["plainError"]["isConvexError"] is False
    assert "Uncaught Error: boom" in findings["plainError"]["message"]
    assert findings["identity"] == identity_of("dan")


def test_websocket_client(
    convex_url: str,
    mint_token: Callable[..., str],
    identity_of: Callable[[str], dict[str, str]],
) -> None:
    findings = run_scenario("ws_client.mjs", convex_url, mint_token("eve"))
    assert findings["initial"] == 0
    assert findings["mutation"] == 1
    assert findings["pushed"] == 11
    assert findings["query"] == 11
    assert findings["action"] == 12
    assert findings["convexError"] == {"isConvexError": True, "data": "nope"}
    assert findings["authenticated"] is True
    assert findings["identity"] == identity_of("eve")


def test_paginated_queries_keep_every_loaded_item(convex_url: str) -> None:
    findings = run_scenario("paginated.mjs", convex_url, "")
    assert findings["firstPage"] == ["note 5", "note 4"]
    assert findings["twoPages"] == ["note 5", "note 4", "note 3", "note 2"]
    # Page 1 grows instead of pushing "note 4" into the gap before page 2.
    assert findings["afterInsert"] == ["newest", "note 5", "note 4", "note 3", "note 2"]
    assert findings["exhausted"] == ["newest", *(f"note {i}" for i in range(5, -1, -1))]
