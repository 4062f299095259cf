"""The example app against a real local deployment of `example/convex/`."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from serving import post_chunked

from benchmarks._wsgi import serve
from example.app import create_app
from example.users import DEMO_PASSWORDS, UserStore

pytest_plugins = ("tests.example_fixtures",)

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}

LIVE = re.compile(
    r'<div id="(convex-[\w-]+)" class="convex-live" data-convex-ref="([^"]+)" '
    r'data-convex-hash="([^"]*)"'
)


# Not named `app`: pytest-flask would push one app context around the whole test,
# and every client's requests would share its `g`, where flask-login keeps the user.
@pytest.fixture
def example_app(example_config: dict[str, Any], example_url: str) -> Flask:
    return create_app({**example_config, "CONVEX_URL": example_url})


@pytest.fixture
def client(example_app: Flask) -> FlaskClient:
    """An anonymous visitor."""
    return example_app.test_client()


def csrf_token(client: FlaskClient) -> str:
    """The session's token, read from a form as a browser would."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert match, "the login form has no CSRF field"
    return match.group(1)


def log_in(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    answer = client.post(
        "/login",
        data={"name": name, "password": DEMO_PASSWORDS[name], "csrf_token": csrf_token(client)},
    )
    assert answer.status_code == 303
    return client


def add(client: FlaskClient, text: str) -> None:
    assert client.post("/api/tasks", json={"text": text}).json == {"success": True}


def task_ids(client: FlaskClient) -> list[str]:
    return re.findall(r'action="/tasks/([^/"]+)/toggle"', client.get("/").text)


def live_fragment(page: str) -> dict[str, str]:
    match = LIVE.search(page)
    assert match, "the page has no live fragment"
    element_id, ref, hash_ = match.groups()
    return {"id": element_id, "ref": ref, "hash": hash_}


def poll(client: FlaskClient, *fragments: dict[str, str]) -> Any:
    return client.post(
        "/_convex/poll",
        json={"fragments": list(fragments)},
        headers={"X-CSRF-Token": csrf_token(client)},
    )


# The app factory


@pytest.fixture
def instance_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    return tmp_path


def test_without_a_secret_key_one_is_made_once_in_the_instance_folder(
    instance_folder: Path,
) -> None:
    first, second = create_app(), create_app()

    assert first.secret_key == second.secret_key
    assert isinstance(first.secret_key, str)
    assert len(first.secret_key) == 64
    assert (instance_folder / "secret_key").stat().st_mode & 0o777 == 0o600


def test_settings_come_from_the_instance_folder_then_the_environment_then_the_caller(
    instance_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (instance_folder / "config.py").write_text(
        "SECRET_KEY = 'from-instance'\nCONVEX_POLL_INTERVAL = 5.0\nCONVEX_TIMEOUT = 3.0\n"
    )
    monkeypatch.setenv("FLASK_CONVEX_POLL_INTERVAL", "4.0")

    app = create_app({"CONVEX_TIMEOUT": 1.0})

    assert app.secret_key == "from-instance"
    assert app.config["CONVEX_POLL_INTERVAL"] == 4.0
    assert app.config["CONVEX_TIMEOUT"] == 1.0
    assert not (instance_folder / "secret_key").exists()


# Pages


def test_index_renders_the_tasks_in_a_live_fragment(client: FlaskClient) -> None:
    add(client, "Buy milk")

    page = client.get("/")

    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    fragment = live_fragment(page.text)
    assert "Buy milk" in page.text[page.text.index(fragment["id"]) :]


def test_static_page_lists_tasks_without_live_fragments(client: FlaskClient) -> None:
    add(client, "Read a book")

    page = client.get("/static")

    assert page.status_code == 200
    assert "Read a book" in page.text
    assert "data-convex-ref" not in page.text


def test_server_page_lists_tasks_with_a_plain_form(client: FlaskClient) -> None:
    add(client, "Walk the dog")

    page = client.get("/server")

    assert page.status_code == 200
    assert "Walk the dog" in page.text
    assert 'action="/server"' in page.text
    assert "hx-post" not in page.text


def test_login_page_names_the_demo_accounts(client: FlaskClient) -> None:
    page = client.get("/login")

    assert page.status_code == 200
    assert "<code>alice</code> / <code>wonderland</code>" in page.text


def test_task_text_is_escaped(client: FlaskClient) -> None:
    add(client, "<script>alert(1)</script>")

    for path in ("/", "/static", "/server"):
        page = client.get(path).text
        assert "<script>alert(1)" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# The add-task server action


def test_add_task_without_javascript_redirects_back(client: FlaskClient) -> None:
    answer = client.post(
        "/tasks",
        data={"text": "Water plants", "csrf_token": csrf_token(client)},
        headers={"Referer": "http://localhost/"},
    )

    assert answer.status_code == 303
    assert answer.headers["Location"] == "http://localhost/"
    assert "Water plants" in client.get("/").text


def test_add_task_with_htmx_answers_a_fresh_form_and_the_changed_list(
    client: FlaskClient,
) -> None:
    fragment = live_fragment(client.get("/").text)

    answer = client.post(
        "/tasks",
        data={"text": "Call mum", "_convex_live": json.dumps([fragment])},
        headers={
            "HX-Request": "true",
            "HX-Current-URL": "http://localhost/",
            "X-CSRF-Token": csrf_token(client),
        },
    )

    assert answer.status_code == 200
    form, _, swaps = answer.text.partition("</form>")
    assert 'name="text" value=""' in form
    assert f'id="{fragment["id"]}"' in swaps
    assert 'hx-swap-oob="true"' in swaps
    assert "Call mum" in swaps
    assert "convex:revalidated" in answer.headers["HX-Trigger"]


def test_blank_task_is_refused_with_the_error_in_the_form(client: FlaskClient) -> None:
    answer = client.post(
        "/tasks",
        data={"text": "   "},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf_token(client)},
    )

    assert answer.status_code == 422
    assert "Task text is required" in answer.text
    assert 'class="task-form"' in answer.text
    assert "No tasks yet" in client.get("/").text


def test_add_task_without_the_csrf_token_is_refused(client: FlaskClient) -> None:
    answer = client.post("/tasks", data={"text": "Forged"})

    assert answer.status_code == 400
    assert "Forged" not in client.get("/").text


def test_toggle_and_remove_change_the_task(client: FlaskClient) -> None:
    add(client, "Pay rent")
    (task_id,) = task_ids(client)
    token = csrf_token(client)

    assert client.post(f"/tasks/{task_id}/toggle", data={"csrf_token": token}).status_code == 303
    assert 'class="task done"' in client.get("/").text

    assert client.post(f"/tasks/{task_id}/remove", data={"csrf_token": token}).status_code == 303
    assert "Pay rent" not in client.get("/").text


# The inline server action of /server


def test_server_action_creates_and_redirects_back(client: FlaskClient) -> None:
    answer = client.post(
        "/server",
        data={"text": "Plain form task", "csrf_token": csrf_token(client)},
        headers={"Referer": "http://localhost/server"},
    )

    assert answer.status_code == 303
    assert answer.headers["Location"] == "http://localhost/server"
    assert "Plain form task" in client.get("/server").text


def test_server_action_refusal_rerenders_the_whole_page(client: FlaskClient) -> None:
    add(client, "Existing task")

    answer = client.post("/server", data={"text": " ", "csrf_token": csrf_token(client)})

    assert answer.status_code == 422
    assert "Task text is required" in answer.text
    assert "Existing task" in answer.text
    assert "<html" in answer.text


# The JSON route handler


def test_json_route_creates_a_task(client: FlaskClient) -> None:
    answer = client.post("/api/tasks", json={"text": "From the API"})

    assert answer.status_code == 200
    assert answer.json == {"success": True}
    assert "From the API" in client.get("/static").text


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        ('{"text": "x"}', "text/plain", 415, "Content-Type: application/json"),
        ("text=x", "application/x-www-form-urlencoded", 415, "Content-Type: application/json"),
        ('{"text": ', "application/json", 400, "JSON object"),
        ('["x"]', "application/json", 400, "JSON object"),
        ("{}", "application/json", 400, '"text" is required'),
        ('{"text": 5}', "application/json", 400, '"text" is required'),
        ('{"text": "  "}', "application/json", 400, "Task text is required"),
        ('{"text": "\\ud800"}', "application/json", 400, "lone surrogate"),
        ('{"text": ' + "[" * 100_000 + "]" * 100_000 + "}", "application/json", 400, "too deeply"),
        ('{"text": "' + "x" * 20_000_000 + '"}', "application/json", 413, "262144 bytes"),
    ],
    ids=[
        "text-plain",
        "form",
        "truncated",
        "list",
        "no-text",
        "number",
        "blank",
        "lone-surrogate",
        "100000-levels",
        "20-MB",
    ],
)
def test_json_route_refuses_bad_input_with_a_clear_error(
    client: FlaskClient, body: str, content_type: str, status: int, message: str
) -> None:
    answer = client.post("/api/tasks", data=body, content_type=content_type)

    assert answer.status_code == status
    assert answer.json is not None
    assert answer.json["success"] is False
    assert message in answer.json["error"]
    assert "No tasks yet" in client.get("/").text


def test_json_route_refuses_a_chunked_body_over_its_limit(example_app: Flask) -> None:
    with serve(example_app) as url:
        body = b'{"text": "' + b"x" * 1_000_000 + b'"}'
        status, answer = post_chunked(
            f"{url}/api/tasks", body, {"Content-Type": "application/json"}
        )
    assert status == 413
    assert json.loads(answer)["success"] is False
    assert "No tasks yet" in example_app.test_client().get("/").text


def test_a_string_no_page_can_encode_never_breaks_a_page(
    client: FlaskClient, example_url: str
) -> None:
    # Another client stores a lone surrogate, which JSON and JavaScript strings can hold.
    raw = '{"path":"tasks:create","args":{"list":"default","text":"a\\ud800b"},"format":"json"}'
    stored = httpx.post(f"{example_url}/api/mutation", content=raw, headers=JSON)
    assert stored.json()["status"] == "success"
    for path in ("/", "/static", "/server"):
        page = client.get(path)
        assert (path, page.status_code) == (path, 200)
        assert "a\ufffdb" in page.text
    fragment = {**live_fragment(client.get("/").text), "hash": "old"}
    answer = poll(client, fragment)
    assert answer.status_code == 200
    assert "a\ufffdb" in answer.text


# Logging in and out


def test_login_shows_the_users_name_and_logout_forgets_it(example_app: Flask) -> None:
    client = log_in(example_app, "alice")
    assert "Signed in as <strong>Alice</strong>" in client.get("/").text

    answer = client.post("/logout", data={"csrf_token": csrf_token(client)})

    assert answer.status_code == 303
    assert "Signed in" not in client.get("/").text


def test_wrong_password_is_refused(client: FlaskClient) -> None:
    answer = client.post(
        "/login",
        data={"name": "alice", "password": "builder", "csrf_token": csrf_token(client)},
    )

    assert answer.status_code == 401
    assert "do not match" in answer.text
    assert "Signed in" not in client.get("/").text


def test_login_without_the_csrf_token_is_refused(client: FlaskClient) -> None:
    answer = client.post("/login", data={"name": "alice", "password": "wonderland"})

    assert answer.status_code == 400
    assert "Signed in" not in client.get("/").text


def test_user_store_checks_passwords() -> None:
    store = UserStore({"carol": "secret"})

    assert store.authenticate(" Carol ", "secret") == store.get("carol")
    assert store.authenticate("carol", "wrong") is None
    assert store.authenticate("nobody", "secret") is None


# Per-user isolation


def test_each_user_sees_only_their_own_tasks(example_app: Flask, client: FlaskClient) -> None:
    alice, bob = log_in(example_app, "alice"), log_in(example_app, "bob")
    add(alice, "Alice's secret")
    add(bob, "Bob's secret")
    add(client, "Shared task")

    for who, own, others in [
        (alice, "Alice&#39;s secret", ("Bob", "Shared task")),
        (bob, "Bob&#39;s secret", ("Alice&#39;s", "Shared task")),
        (client, "Shared task", ("secret",)),
    ]:
        for path in ("/", "/static", "/server"):
            page = who.get(path).text
            assert own in page
            body = page.split("</header>")[1]
            assert [other for other in others if other in body] == [], (path, own)


def test_a_user_cannot_toggle_or_remove_another_users_task(example_app: Flask) -> None:
    alice, bob = log_in(example_app, "alice"), log_in(example_app, "bob")
    add(alice, "Alice's task")
    (task_id,) = task_ids(alice)

    for action in ("toggle", "remove"):
        answer = bob.post(
            f"/tasks/{task_id}/{action}",
            headers={"HX-Request": "true", "X-CSRF-Token": csrf_token(bob)},
        )
        assert answer.status_code == 422
        assert "Not found" in answer.text

    assert task_ids(alice) == [task_id]
    assert 'class="task done"' not in alice.get("/").text


def test_anonymous_users_cannot_change_a_users_task(
    example_app: Flask, client: FlaskClient
) -> None:
    alice = log_in(example_app, "alice")
    add(alice, "Alice's task")
    (task_id,) = task_ids(alice)

    answer = client.post(f"/tasks/{task_id}/remove", data={"csrf_token": csrf_token(client)})

    assert answer.status_code == 422
    assert task_ids(alice) == [task_id]


def test_a_tampered_live_reference_is_refused(example_app: Flask) -> None:
    alice, bob = log_in(example_app, "alice"), log_in(example_app, "bob")
    add(bob, "Bob's task")
    fragment = live_fragment(alice.get("/").text)
    payload, _, signature = fragment["ref"].partition(".")
    name, args, *rest = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = [name, {**args, "list": "other"}, *rest]
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()

    answer = poll(alice, {**fragment, "ref": f"{forged_payload}.{signature}", "hash": ""})

    assert answer.status_code == 400
    assert "out of date" in answer.text
    assert "data-convex-ref" not in answer.text


def test_a_replayed_live_reference_shows_the_pollers_own_tasks(example_app: Flask) -> None:
    alice, bob = log_in(example_app, "alice"), log_in(example_app, "bob")
    add(alice, "Alice's task")
    add(bob, "Bob's task")
    alices_fragment = live_fragment(alice.get("/").text)

    answer = poll(bob, {**alices_fragment, "hash": ""})

    assert answer.status_code == 200
    assert "Bob&#39;s task" in answer.text
    assert "Alice" not in answer.text
