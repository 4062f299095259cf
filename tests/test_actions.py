"""Server actions: revalidated fragments in one answer, redirects, form errors, failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask, make_response, render_template_string, request
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live_pages import (
    HTMX,
    JSON_VALUES,
    FakeConvex,
    ThrownError,
    fake_convex,
    fragments_of,
    make_app,
    same_site_headers,
    soup,
)

from flask_convex import (
    ConvexConfigError,
    api,
    fetch_mutation,
    preload_query,
    revalidate,
    revalidate_path,
    server_action,
)
from flask_convex.actions import MAYBE_SAVED

TASKS = [{"_id": "t1", "text": "Buy milk"}]


@pytest.fixture
def app() -> Flask:
    return make_app()


@pytest.fixture
def convex() -> Iterator[FakeConvex]:
    with fake_convex(TASKS) as fake:
        fake.mutations["tasks:create"] = lambda args: add_task(fake, args["text"])
        yield fake


def add_task(convex: FakeConvex, text: str) -> str:
    if not text.strip():
        raise ThrownError("Task text is required")
    convex.data["tasks:list"] = [*convex.data["tasks:list"], {"_id": "t2", "text": text}]
    convex.data["counter:get"] += 1
    return "t2"


def create_task() -> None:
    fetch_mutation(api.tasks.create, {"list": "home", "text": request.form["text"]})
    revalidate(api.tasks.list)


def post(client: FlaskClient, url: str, data: dict[str, str], **headers: str) -> Any:
    return client.post(url, data=data, headers=same_site_headers(client, **headers))


def live_field(client: FlaskClient) -> dict[str, str]:
    """The `_convex_live` field flask-convex.js adds to an htmx POST from the page "/"."""
    return {"_convex_live": json.dumps(fragments_of(client.get("/").data))}


def test_an_htmx_action_answers_with_the_fragments_it_changed(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    app.post("/tasks")(server_action(form="partials/task_form.html")(create_task))
    tasks, _ = fragments_of(client.get("/").data)
    answer = post(client, "/tasks", {"text": "Walk dog", **live_field(client)}, **HTMX)
    assert answer.status_code == 200
    (swap,) = soup(answer.data).select("[hx-swap-oob]")
    assert swap["id"] == tasks["id"]
    assert [li.get_text() for li in swap.select("li")] == ["Buy milk", "Walk dog"]
    fresh_form = soup(answer.data).select_one("form input[name=text]")
    assert fresh_form is not None
    assert fresh_form["value"] == ""
    assert json.loads(answer.headers["HX-Trigger"]) == {
        "convex:revalidated": {"functions": ["tasks:list"], "paths": []}
    }
    assert convex.mutation_route.call_count == 1
    assert convex.batched() == ["tasks:list"]


def test_revalidating_with_args_refreshes_only_that_call(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    @app.post("/other")
    @server_action
    def other_list() -> None:
        fetch_mutation(api.tasks.create, {"list": "work", "text": "Call Bob"})
        revalidate(api.tasks.list, {"list": "work"})

    answer = post(client, "/other", live_field(client), **HTMX)
    assert answer.status_code == 200
    assert soup(answer.data).select("[hx-swap-oob]") == []
    assert convex.batches.call_count == 1, "only the page's own batch"


def test_revalidating_the_page_path_refreshes_all_its_fragments(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    @app.post("/everything")
    @server_action
    def everything() -> None:
        fetch_mutation(api.tasks.create, {"list": "home", "text": "Read"})
        revalidate_path(request.form["path"])

    fields = live_field(client)
    home = post(client, "/everything", {"path": "/", **fields}, **HTMX)
    assert len(soup(home.data).select("[hx-swap-oob]")) == 2
    assert convex.batched() == ["tasks:list", "counter:get"]
    elsewhere = post(client, "/everything", {"path": "/about", **fields}, **HTMX)
    assert soup(elsewhere.data).select("[hx-swap-oob]") == []
    assert json.loads(elsewhere.headers["HX-Trigger"])["convex:revalidated"]["paths"] == ["/about"]


@pytest.mark.parametrize(
    ("own", "expected"),
    [
        ("taskAdded", {"taskAdded": {}}),
        ("taskAdded, flash", {"taskAdded": {}, "flash": {}}),
        ('{"flash": {"text": "Saved"}}', {"flash": {"text": "Saved"}}),
    ],
)
def test_the_trigger_event_is_merged_with_the_views_own(
    app: Flask, client: FlaskClient, convex: FakeConvex, own: str, expected: dict[str, Any]
) -> None:
    @app.post("/tasks")
    @server_action
    def create_with_own_response() -> Any:
        create_task()
        response = make_response("<p id='done'>done</p>")
        response.headers["HX-Trigger"] = own
        return response

    answer = post(client, "/tasks", {"text": "Walk dog", **live_field(client)}, **HTMX)
    assert soup(answer.data).select_one("#done") is not None
    assert len(soup(answer.data).select("[hx-swap-oob]")) == 1
    events = json.loads(answer.headers["HX-Trigger"])
    assert events == {**expected, "convex:revalidated": {"functions": ["tasks:list"], "paths": []}}


@pytest.mark.parametrize(
    ("fields", "referrer", "target"),
    [
        ({}, "http://localhost/list?page=2", "http://localhost/list?page=2"),
        ({}, "https://evil.example/", "/"),
        ({"next": "/done"}, "http://localhost/", "/done"),
        ({"next": "//evil.example/"}, None, "/"),
        ({"next": "https://evil.example/"}, "http://localhost/back", "http://localhost/back"),
    ],
)
def test_a_plain_form_post_is_redirected_back_to_this_site(
    app: Flask,
    client: FlaskClient,
    convex: FakeConvex,
    fields: dict[str, str],
    referrer: str | None,
    target: str,
) -> None:
    app.post("/tasks")(server_action(create_task))
    headers = {"Referer": referrer} if referrer else {}
    answer = post(client, "/tasks", {"text": "Walk dog", **fields}, **headers)
    assert answer.status_code == 303
    assert answer.headers["Location"] == target
    assert "HX-Trigger" not in answer.headers
    assert convex.mutation_route.call_count == 1


@pytest.mark.parametrize("htmx", [True, False])
def test_a_convex_error_rerenders_the_form_with_the_input_and_the_error(
    app: Flask, client: FlaskClient, convex: FakeConvex, htmx: bool
) -> None:
    app.post("/tasks")(server_action(form="partials/task_form.html")(create_task))
    headers = HTMX if htmx else {}
    answer = post(client, "/tasks", {"text": "   ", **live_field(client)}, **headers)
    assert answer.status_code == 422
    assert answer.headers["X-Convex-Action"] == "form"
    page = soup(answer.data)
    assert page.select_one("p.error").get_text() == "Task text is required"  # type: ignore[union-attr]
    assert page.select_one("input[name=text]")["value"] == "   "  # type: ignore[index]
    assert page.select("[hx-swap-oob]") == []
    assert "HX-Trigger" not in answer.headers


def test_without_javascript_a_convex_error_shows_the_whole_page_again(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    app.post("/tasks")(server_action(form="partials/task_form.html")(create_task))

    @app.get("/compose")
    def compose() -> str:
        return render_template_string('<h1>Compose</h1>{% include "partials/task_form.html" %}')

    answer = post(client, "/tasks", {"text": "   "}, Referer="http://localhost/compose")
    assert answer.status_code == 422
    page = soup(answer.data)
    assert page.select_one("h1").get_text() == "Compose"  # type: ignore[union-attr]
    assert page.select_one("p.error").get_text() == "Task text is required"  # type: ignore[union-attr]
    assert page.select_one("input[name=text]")["value"] == "   "  # type: ignore[index]
    assert convex.mutation_route.call_count == 1


@pytest.mark.parametrize(
    "referrer", ["https://elsewhere.example/compose", "http://localhost/tasks"]
)
def test_without_a_page_of_this_app_to_return_to_the_form_is_answered_alone(
    app: Flask, client: FlaskClient, convex: FakeConvex, referrer: str
) -> None:
    app.post("/tasks")(server_action(form="partials/task_form.html")(create_task))
    answer = post(client, "/tasks", {"text": "   "}, Referer=referrer)
    assert answer.status_code == 422
    assert answer.headers["X-Convex-Action"] == "form"
    assert soup(answer.data).select_one("p.error").get_text() == "Task text is required"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (httpx.ConnectError("refused"), 503),
        (httpx.Response(500, json={"code": "InternalServerError", "message": "db"}), 502),
        (httpx.Response(200, json={"status": "error", "errorMessage": "TypeError: x"}), 500),
    ],
)
def test_any_other_failure_is_an_error_fragment_and_nothing_is_swapped(
    app: Flask, client: FlaskClient, convex: FakeConvex, failure: Any, status: int
) -> None:
    app.post("/tasks")(server_action(create_task))
    convex.mutation_route.side_effect = failure
    answer = post(client, "/tasks", {"text": "Walk dog", **live_field(client)}, **HTMX)
    assert answer.status_code == status
    assert answer.headers["X-Convex-Action"] == "error"
    (alert,) = soup(answer.data).select("[role=alert]")
    assert alert.get_text() == "Something went wrong. Please try again."
    assert soup(answer.data).select("[hx-swap-oob]") == []
    assert convex.batches.call_count == 1


@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize(
    "lost", [httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("Server disconnected")]
)
def test_a_write_whose_answer_was_lost_says_it_may_have_been_saved(
    app: Flask, client: FlaskClient, convex: FakeConvex, lost: Exception, htmx: bool
) -> None:
    app.post("/tasks")(server_action(form="partials/task_form.html")(create_task))
    convex.mutation_route.side_effect = lost
    answer = post(client, "/tasks", {"text": "Walk dog"}, **(HTMX if htmx else {}))
    assert answer.status_code == 504
    page = soup(answer.data)
    assert page.select_one("p.error").get_text() == MAYBE_SAVED  # type: ignore[union-attr]
    assert "Reload the page to check" in MAYBE_SAVED
    assert convex.mutation_route.call_count == 1


def test_a_failure_after_a_write_never_invites_a_retry(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    @app.post("/tasks")
    @server_action
    def add_then_fail() -> None:
        create_task()
        raise RuntimeError("the view broke after saving")

    answer = post(client, "/tasks", {"text": "Walk dog"}, **HTMX)
    assert answer.status_code == 500
    assert soup(answer.data).select_one("[role=alert]").get_text() == MAYBE_SAVED  # type: ignore[union-attr]
    assert convex.data["tasks:list"][-1]["text"] == "Walk dog"


@pytest.mark.parametrize(
    "next_url",
    ["/done\r\nSet-Cookie: stolen=1", "/\t/evil.example", "/done\x00", "http://[bad"],
)
def test_an_unsafe_next_after_a_write_falls_back_to_a_safe_redirect(
    app: Flask, client: FlaskClient, convex: FakeConvex, next_url: str
) -> None:
    app.post("/tasks")(server_action(create_task))
    fields = {"text": "Walk dog", "next": next_url}
    answer = post(client, "/tasks", fields, Referer="http://localhost/compose")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "http://localhost/compose"
    assert "stolen" not in str(answer.headers)
    assert convex.mutation_route.call_count == 1


def test_a_failing_page_behind_a_failed_form_still_shows_the_form(
    app: Flask, client: FlaskClient, convex: FakeConvex, caplog: pytest.LogCaptureFixture
) -> None:
    app.post("/tasks")(server_action(form="partials/task_form.html")(create_task))

    @app.get("/compose")
    def compose() -> str:
        raise RuntimeError("the page cannot render now")

    answer = post(client, "/tasks", {"text": "   "}, Referer="http://localhost/compose")
    assert answer.status_code == 422
    assert soup(answer.data).select_one("p.error").get_text() == "Task text is required"  # type: ignore[union-attr]
    assert "the page cannot render now" in caplog.text


def test_a_bug_in_the_view_is_logged_and_shown_in_the_form(
    app: Flask, client: FlaskClient, convex: FakeConvex, caplog: pytest.LogCaptureFixture
) -> None:
    @app.post("/tasks")
    @server_action(form="partials/task_form.html")
    def broken() -> None:
        raise KeyError("oops")

    answer = post(client, "/tasks", {"text": "Walk dog"}, **HTMX)
    assert answer.status_code == 500
    page = soup(answer.data)
    assert page.select_one("p.error").get_text() == "Something went wrong. Please try again."  # type: ignore[union-attr]
    assert page.select_one("input[name=text]")["value"] == "Walk dog"  # type: ignore[index]
    assert "KeyError: 'oops'" in caplog.text


def test_an_async_view_works(app: Flask, client: FlaskClient, convex: FakeConvex) -> None:
    @app.post("/tasks")
    @server_action
    async def create_async() -> None:
        create_task()

    answer = post(client, "/tasks", {"text": "Walk dog", **live_field(client)}, **HTMX)
    assert len(soup(answer.data).select("[hx-swap-oob]")) == 1


def test_when_the_refresh_fails_the_action_still_succeeds_without_swaps(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    app.post("/tasks")(server_action(create_task))
    fields = live_field(client)
    convex.batches.side_effect = httpx.ConnectError("refused")
    answer = post(client, "/tasks", {"text": "Walk dog", **fields}, **HTMX)
    assert answer.status_code == 200
    assert soup(answer.data).select("[hx-swap-oob]") == []
    assert convex.mutation_route.call_count == 1


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        ("{not json", b"Not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, b"nested too deeply"),
        ('[{"id": "a"}]', b"string id, ref and hash"),
    ],
    ids=["malformed", "100000-levels", "not-fragments"],
)
def test_a_malformed_live_field_is_refused_before_the_view_runs(
    app: Flask, client: FlaskClient, convex: FakeConvex, field: str, problem: bytes
) -> None:
    app.post("/tasks")(server_action(create_task))
    answer = post(client, "/tasks", {"text": "x", "_convex_live": field}, **HTMX)
    assert answer.status_code == 400
    assert b"_convex_live" in answer.data
    assert problem in answer.data
    assert not convex.mutation_route.called


def test_a_cross_site_post_never_reaches_the_view(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    app.post("/tasks")(server_action(create_task))
    answer = post(client, "/tasks", {"text": "x"}, Origin="https://evil.example")
    assert answer.status_code == 403
    assert not convex.mutation_route.called


def test_revalidate_outside_a_server_action_is_an_error(app: Flask) -> None:
    with app.test_request_context(), pytest.raises(ConvexConfigError, match="@server_action"):
        revalidate(api.tasks.list)
    with pytest.raises(ConvexConfigError, match="@server_action"):
        revalidate_path("/")


def test_revalidate_path_needs_a_path(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    @app.post("/bad")
    @server_action
    def bad() -> None:
        revalidate_path("tasks")

    assert post(client, "/bad", {}, **HTMX).status_code == 500
    assert "revalidate_path() takes a path starting with '/', not 'tasks'" in caplog.text


@pytest.mark.integration
def test_against_the_local_deployment_one_action_shows_the_change(convex_url: str) -> None:
    app = make_app(user_token=None, CONVEX_URL=convex_url)

    @app.get("/counter")
    def counter_page() -> str:
        count = preload_query(api.counter.get, {"name": "hits"})
        page = '{% from "convex/macros.html" import live %}{{ live(c, "partials/count.html") }}'
        return render_template_string(page, c=count)

    @app.post("/hit")
    @server_action
    def hit() -> None:
        fetch_mutation(api.counter.increment, {"name": "hits"})
        revalidate(api.counter.get, {"name": "hits"})

    client = app.test_client()
    page = client.get("/counter")
    (fragment,) = fragments_of(page.data)
    assert soup(page.data).get_text() == "0.0"
    headers = same_site_headers(client, **{**HTMX, "HX-Current-URL": "http://localhost/counter"})
    answer = client.post("/hit", data={"_convex_live": json.dumps([fragment])}, headers=headers)
    (swap,) = soup(answer.data).select("[hx-swap-oob]")
    assert (swap["id"], swap.get_text()) == (fragment["id"], "1.0")
    polled = client.post(
        "/_convex/poll",
        json={"fragments": [{**fragment, "hash": str(swap["data-convex-hash"])}]},
        headers=same_site_headers(client),
    )
    assert polled.status_code == 204


def test_templates_render_outside_requests_too(app: Flask) -> None:
    with app.app_context():
        assert render_template_string("{{ 1 + 1 }}") == "2"


# Properties: no form, however strange, makes an action fail with a 5xx

URLS = st.tuples(
    st.sampled_from(["", "/", "//", "/\\", "http://localhost/", "https://localhost/"]),
    st.text(st.sampled_from("a/\\\r\n\t\x00 :@.%[]"), max_size=10),
)
FIELDS = st.fixed_dictionaries(
    {"text": st.text(max_size=30)},
    optional={
        "next": URLS.map("".join),
        "_convex_live": st.one_of(JSON_VALUES.map(json.dumps), st.text(max_size=30)),
    },
)


@pytest.fixture
def form_action(app: Flask) -> None:
    """The action under test, registered before the client's first request."""
    app.post("/tasks")(server_action(form="partials/task_form.html")(create_task))


@pytest.mark.usefixtures("form_action")
@settings(
    max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    fields=FIELDS,
    extra=st.dictionaries(st.text(max_size=8), st.text(max_size=30), max_size=3),
    headers=st.sampled_from([{}, HTMX, {"Referer": "http://localhost/"}]),
)
def test_no_form_makes_an_action_fail(
    client: FlaskClient,
    convex: FakeConvex,
    fields: dict[str, str],
    extra: dict[str, str],
    headers: dict[str, str],
) -> None:
    answer = post(client, "/tasks", {**extra, **fields}, **headers)
    assert answer.status_code < 500
