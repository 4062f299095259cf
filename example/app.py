"""The example app: one page for each use on Convex's Next.js server-rendering page.

Run it with `flask --app example.app convex dev` (or `scripts/example`): a local
Convex deployment serves `example/convex/`, and the Flask dev server uses it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from flask import Blueprint, Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from flask_convex import (
    Convex,
    ConvexError,
    ConvexValueError,
    fetch_mutation,
    fetch_query,
    limit_body,
    preload_paginated_query,
    preload_query,
    revalidate,
    revalidate_path,
    server_action,
)

from . import errors, users
from .convex_api import HistoryId, TasksId, api

HISTORY_PAGE: Final = 20
"""Entries per page of /history."""

SEED_COUNT: Final = 200
"""Entries the history's seed button adds."""

LIST: Final = "default"
"""The task list every page shows, as in the seed's `{ list: "default" }`."""

API_MAX_BODY: Final = 256 * 1024
"""The largest body `/api/tasks` reads, in bytes: a task is a line of text."""

DEFAULTS: Final[Mapping[str, Any]] = {
    # The iss claim of the users' tokens; the local deployment gets the matching
    # issuer and JWKS from the app, so it only has to name this app.
    "CONVEX_AUTH_ISSUER": "http://127.0.0.1:5000",
    "CONVEX_AUTH_APPLICATION_ID": "flask-convex-example",
}

pages = Blueprint("pages", __name__)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: DEFAULTS, then instance/config.py, then FLASK_* variables, then `config`."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env()
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))
    convex = Convex(app)
    convex.identity_claims(lambda user: {"name": user.name})
    users.init_app(app)
    errors.init_app(app)
    app.register_blueprint(pages)
    return app


@pages.get("/")
def index() -> str:
    """The seed's TasksWrapper: tasks preloaded on the server, then kept live in the page."""
    tasks = preload_query(api.tasks.list, {"list": LIST})
    return render_template("index.html", tasks=tasks)


@pages.post("/tasks")
@server_action(form="partials/task_form.html")
def add_task() -> None:
    """Add a task from the page's form."""
    fetch_mutation(api.tasks.create, {"list": LIST, "text": request.form.get("text", "")})
    revalidate(api.tasks.list)


@pages.post("/tasks/<task_id>/toggle")
@server_action
def toggle_task(task_id: str) -> None:
    """Mark a task done or not done."""
    fetch_mutation(api.tasks.toggle, {"id": TasksId(task_id)})
    revalidate(api.tasks.list)


@pages.post("/tasks/<task_id>/remove")
@server_action
def remove_task(task_id: str) -> None:
    """Delete a task."""
    fetch_mutation(api.tasks.remove, {"id": TasksId(task_id)})
    revalidate(api.tasks.list)


@pages.get("/history")
def history() -> str:
    """A long list as `usePaginatedQuery`: 20 entries, more as you scroll, every page live."""
    entries = preload_paginated_query(api.history.list, initial_num_items=HISTORY_PAGE)
    return render_template("history.html", entries=entries)


@pages.post("/history")
@server_action(form="partials/history_form.html")
def add_history() -> None:
    """Add an entry at the top of the history."""
    fetch_mutation(api.history.add, {"text": request.form.get("text", "")})
    revalidate(api.history.list)


@pages.post("/history/seed")
@server_action
def seed_history() -> None:
    """Add SEED_COUNT numbered entries, so there is something to scroll through."""
    fetch_mutation(api.history.seed, {"count": SEED_COUNT})
    revalidate(api.history.list)


@pages.post("/history/<entry_id>/remove")
@server_action
def remove_history(entry_id: str) -> None:
    """Delete an entry, wherever it is in the list."""
    fetch_mutation(api.history.remove, {"id": HistoryId(entry_id)})
    revalidate(api.history.list)


@pages.get("/static")
def static_tasks() -> str:
    """The seed's StaticTasks: rendered once from `fetch_query`, not live."""
    tasks = fetch_query(api.tasks.list, {"list": LIST})
    return render_template("static.html", tasks=tasks)


@pages.get("/server")
def server_page() -> str:
    """The seed's PureServerPage: tasks and a plain form, no JavaScript needed."""
    return _server_page()


@pages.post("/server")
@server_action
def create_on_server() -> ResponseReturnValue | None:
    """The seed's inline `createTask`; a refusal re-renders the page, which needs no JavaScript."""
    text = request.form.get("text", "")
    try:
        fetch_mutation(api.tasks.create, {"list": LIST, "text": text})
    except ConvexError as error:
        return _server_page(text=text, error=str(error.data)), 422
    revalidate_path("/server")
    return None


def _server_page(text: str = "", error: str | None = None) -> str:
    tasks = fetch_query(api.tasks.list, {"list": LIST})
    return render_template("server.html", tasks=tasks, text=text, error=error)


@pages.post("/api/tasks")
def api_create_task() -> ResponseReturnValue:
    """The seed's route handler: `{"text": ...}` in, `{"success": true}` out.

    It takes JSON only: a cross-site page cannot send `Content-Type:
    application/json` without a CORS preflight, which this app never grants,
    so no CSRF token is needed. Bodies over API_MAX_BODY are refused (413).
    """
    limit_body(API_MAX_BODY)
    if not request.is_json:
        return _json_error("Send the task as JSON with Content-Type: application/json", 415)
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        return _json_error("The JSON is nested too deeply", 400)
    if not isinstance(body, dict):
        return _json_error('The body must be a JSON object such as {"text": "Buy milk"}', 400)
    text = body.get("text")
    if not isinstance(text, str):
        return _json_error('"text" is required and must be a string', 400)
    try:
        fetch_mutation(api.tasks.create, {"list": LIST, "text": text})
    except ConvexValueError as error:
        return _json_error(f'"text" cannot be stored: {error}', 400)
    except ConvexError as error:
        return _json_error(str(error.data), 400)
    return jsonify(success=True)


def _json_error(message: str, status: int) -> ResponseReturnValue:
    return jsonify(success=False, error=message), status


def _instance_secret(folder: Path) -> str:
    """The SECRET_KEY kept in the instance folder, made on first run by whichever process wins."""
    path = folder / "secret_key"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        draft = folder / f".secret_key.{secrets.token_hex(8)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32))
        # link() refuses to replace, so processes starting together agree on one secret.
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return path.read_text().strip()
