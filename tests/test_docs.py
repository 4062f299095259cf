"""The docs/ site: it builds without a warning, documents every setting and public name,
and its quickstart app works as the page says."""

from __future__ import annotations

import importlib.util
import inspect
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from flask.testing import FlaskClient

import flask_convex
from flask_convex.extension import DEFAULTS
from flask_convex.testing import running_deployment

DOCS = Path(__file__).resolve().parent.parent / "docs"
QUICKSTART = DOCS / "quickstart"

# Read by the admin commands rather than set by init_app (cli._target).
NOT_DEFAULTS = {"CONVEX_ADMIN_KEY"}


def test_the_docs_build_without_a_warning(tmp_path: Path) -> None:
    # -n: every cross-reference must resolve (a renamed setting or function fails here).
    build = ["-b", "html", "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", *build],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    index = (tmp_path / "html" / "index.html").read_text()
    assert 'href="configuration.html"' in index
    assert 'href="api.html"' in index


def _confvals() -> dict[str, str | None]:
    """Each setting of configuration.rst with the default it states (None if it states none)."""
    text = (DOCS / "configuration.rst").read_text()
    found: dict[str, str | None] = {}
    for match in re.finditer(r"^\.\. confval:: (\w+)\n((?:   :\w+: .*\n)*)", text, re.MULTILINE):
        default = re.search(r":default: ``(.*)``", match[2])
        found[match[1]] = default[1] if default else None
    return found


def test_the_configuration_page_documents_every_setting_with_its_default() -> None:
    documented = _confvals()
    assert set(documented) - NOT_DEFAULTS == set(DEFAULTS)
    for key, value in DEFAULTS.items():
        assert documented[key] == repr(value), key


def _documented_names() -> set[str]:
    text = (DOCS / "api.rst").read_text()
    return set(re.findall(r"^\.\. (?:auto\w+|py:\w+):: (\w+)", text, re.MULTILINE))


def test_the_api_reference_documents_every_public_name() -> None:
    assert set(flask_convex.__all__) - _documented_names() == set()


def test_hand_written_entries_open_with_the_docstring() -> None:
    text = (DOCS / "api.rst").read_text()
    entries = re.findall(r"^\.\. py:function:: (\w+)\(.*\n\n   (.+)$", text, re.MULTILINE)
    assert entries
    for name, summary in entries:
        docstring = inspect.getdoc(getattr(flask_convex, name)) or ""
        assert summary == docstring.splitlines()[0], name


@pytest.fixture(scope="module")
def quickstart_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_deployment(QUICKSTART / "convex", {}, tmp_path_factory) as deployment:
        yield deployment.url


def _quickstart_app(monkeypatch: pytest.MonkeyPatch, url: str) -> ModuleType:
    """docs/quickstart/app.py, imported afresh as `flask --app app` would with CONVEX_URL set."""
    monkeypatch.setenv("CONVEX_URL", url)
    spec = importlib.util.spec_from_file_location("quickstart_app", QUICKSTART / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Flask finds the app's templates from the module's file.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def _csrf_token(client: FlaskClient) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
    assert match, "the page has no CSRF field"
    return match[1]


@pytest.mark.integration
def test_the_quickstart_app_lists_what_its_form_adds(
    quickstart_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _quickstart_app(monkeypatch, quickstart_url).app.test_client()
    assert "No tasks yet." in client.get("/").text
    token = _csrf_token(client)

    added = client.post("/tasks", data={"text": "Buy milk", "csrf_token": token})
    assert added.status_code == 303
    page = client.get("/").text
    assert "<li>Buy milk</li>" in page
    assert 'class="convex-live"' in page

    refused = client.post(
        "/tasks", data={"text": " ", "csrf_token": token}, headers={"HX-Request": "true"}
    )
    assert refused.status_code == 422
    assert "Write something first" in refused.text
