"""Live fragments: rendering, signed references, lazy loading, the poll endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, render_template_string, request, template_rendered
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from live_pages import (
    JSON_VALUES,
    TOKEN,
    FakeConvex,
    element,
    fake_convex,
    fragments_of,
    make_app,
    same_site_headers,
    soup,
)

from flask_convex import (
    ConvexConfigError,
    LiveReferenceError,
    api,
    fetch_mutation,
    live,
    preload_query,
)
from flask_convex.client import Call, Outcome
from flask_convex.live import SALT, LiveRef, render_fragment
from flask_convex.local import SERVER_SOURCE
from flask_convex.memo import Memo

TASKS = [{"_id": "t1", "text": "Buy milk"}, {"_id": "t2", "text": "Walk <the> dog"}]


@pytest.fixture
def app() -> Flask:
    return make_app()


@pytest.fixture
def convex() -> Iterator[FakeConvex]:
    with fake_convex(TASKS) as fake:
        yield fake


@pytest.fixture
def rendered(app: Flask) -> Iterator[list[str]]:
    """Names of the templates rendered, in order."""
    names: list[str] = []

    def record(sender: Flask, template: Any, context: Any, **extra: Any) -> None:
        names.append(template.name)

    with template_rendered.connected_to(record, app):
        yield names


def poll(client: FlaskClient, fragments: list[dict[str, str]], **headers: str) -> Any:
    return client.post(
        "/_convex/poll",
        json={"fragments": fragments},
        headers=same_site_headers(client, **headers),
    )


def test_live_renders_the_partial_with_the_value_and_what_templates_see(
    client: FlaskClient, convex: FakeConvex
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    tasks = soup(page.data).select_one("ul.tasks")
    assert tasks is not None
    assert [li.get_text() for li in tasks.select("li")] == ["Buy milk", "Walk <the> dog"]
    assert tasks.select_one("p.context").get_text().split() == ["False", "/", "/"]  # type: ignore[union-attr]
    assert "convex-live" in tasks["class"]
    assert tasks["data-convex-hash"]
    assert page.headers["Cache-Control"] == "no-store"


def test_all_live_fragments_of_a_page_come_from_one_batch(
    client: FlaskClient, convex: FakeConvex
) -> None:
    client.get("/")
    assert convex.batches.call_count == 1
    assert convex.batched() == ["tasks:list", "counter:get"]


def test_convex_data_is_escaped(client: FlaskClient, convex: FakeConvex) -> None:
    attack = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    convex.data["tasks:list"] = [{"_id": "t1", "text": attack}]
    page = client.get("/")
    tasks = soup(page.data).select_one("ul.tasks")
    assert tasks is not None
    assert tasks.select("script, img") == []
    assert tasks.select_one("li").get_text() == attack  # type: ignore[union-attr]


def test_the_reference_binds_query_args_and_partial_and_holds_no_token(
    client: FlaskClient, convex: FakeConvex
) -> None:
    page = client.get("/")
    assert TOKEN not in page.get_data(as_text=True)
    tasks = soup(page.data).select_one("ul.tasks")
    assert tasks is not None
    with client.application.test_request_context():
        ref = LiveRef.load(str(tasks["data-convex-ref"]))
    assert ref == LiveRef("tasks:list", {"list": "home"}, "partials/tasks.html", "ul", "tasks")


def test_a_reference_shown_from_a_call_keeps_the_calls_encoded_args() -> None:
    call = Call("https://x.convex.cloud", "tasks:list", {"b": 1.0, "a": "x"}, '{"a":"x","b":1.0}')
    shown = LiveRef.showing(call, "partials/tasks.html", "ul", "")
    assert shown.canonical_args == call.args_key
    assert (
        'data-convex-args="{&#34;a&#34;:&#34;x&#34;,&#34;b&#34;:1.0}"' in shown.query_attributes()
    )
    assert LiveRef("tasks:list", {"b": 1.0, "a": "x"}, "p.html").canonical_args == call.args_key
    assert replace(shown, args={"c": 2.0}).canonical_args == '{"c":2.0}'


def test_a_tampered_or_expired_reference_is_refused(app: Flask, monkeypatch: Any) -> None:
    with app.test_request_context():
        signed = LiveRef("tasks:list", {}, "partials/tasks.html").sign()
        assert LiveRef.load(signed).name == "tasks:list"
        other_key = URLSafeTimedSerializer("another-secret", salt=SALT)
        forged = other_key.dumps(["users:secrets", {}, "partials/tasks.html", "div", ""])
        middle = len(signed) // 2
        tampered = signed[:middle] + ("A" if signed[middle] != "A" else "B") + signed[middle + 1 :]
        for bad in (forged, tampered, "", "not-a-reference"):
            with pytest.raises(LiveReferenceError, match="not valid"):
                LiveRef.load(bad)
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 10)
        old = LiveRef("tasks:list", {}, "partials/tasks.html").sign()
        monkeypatch.undo()
        assert LiveRef.load(old).name == "tasks:list"
        app.config["CONVEX_LIVE_MAX_AGE"] = 5
        with pytest.raises(LiveReferenceError, match="expired"):
            LiveRef.load(old)


def test_a_reference_polled_again_is_verified_once_and_still_expires(
    app: Flask, monkeypatch: Any
) -> None:
    clock = [1_900_000_000]  # not the other tests' second: signatures are kept a second
    verified: list[bytes] = []
    verify = TimestampSigner.verify_signature
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: clock[0])
    monkeypatch.setattr(
        TimestampSigner,
        "verify_signature",
        lambda self, value, sig: verified.append(value) or verify(self, value, sig),
    )
    ref = LiveRef("tasks:list", {"list": "home"}, "partials/tasks.html")
    with app.test_request_context():
        signed = ref.sign()
        assert [LiveRef.load(signed) for _ in range(3)] == [ref] * 3
        assert len(verified) == 1
        app.config["CONVEX_LIVE_MAX_AGE"] = 5
        clock[0] += 5
        assert LiveRef.load(signed) == ref
        clock[0] += 1
        with pytest.raises(LiveReferenceError, match="expired"):
            LiveRef.load(signed)
        app.config["CONVEX_LIVE_MAX_AGE"] = None  # no expiry, as itsdangerous's max_age
        assert LiveRef.load(signed) == ref
        tampered = signed[:-1] + ("A" if signed[-1] != "A" else "B")
        for _ in range(2):
            with pytest.raises(LiveReferenceError, match="not valid"):
                LiveRef.load(tampered)
    other_key = make_app(SECRET_KEY="another-secret").test_request_context()
    with other_key, pytest.raises(LiveReferenceError, match="not valid"):
        LiveRef.load(signed)


def test_the_references_remembered_are_bounded_in_count_and_length(
    app: Flask, monkeypatch: Any
) -> None:
    monkeypatch.setattr(live, "_MAX_VERIFIED_TEXT", 400)
    with app.test_request_context():
        monkeypatch.setattr(live.serializer()._verified, "limit", 3)
        refs = [LiveRef("tasks:list", {"n": float(n)}, "partials/tasks.html") for n in range(7)]
        long = LiveRef("tasks:list", {"q": "x" * 500}, "partials/tasks.html")
        for ref in [*refs, long]:
            assert LiveRef.load(ref.sign()) == ref
        kept = live.serializer()._verified
        assert 0 < len(kept) <= 3
        assert all(len(signed) <= 400 for signed in kept)


def test_a_reference_is_signed_once_a_second_to_the_same_text(app: Flask, monkeypatch: Any) -> None:
    clock = [1_800_000_000]
    signatures: list[bytes] = []
    sign = TimestampSigner.get_signature
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: clock[0])
    monkeypatch.setattr(
        TimestampSigner,
        "get_signature",
        lambda self, value: signatures.append(value) or sign(self, value),
    )
    ref = LiveRef("tasks:list", {"list": "home"}, "partials/tasks.html")
    with app.test_request_context():
        first = ref.sign()
        assert [ref.sign() for _ in range(3)] == [first] * 3
        other = LiveRef("tasks:list", {"list": "work"}, "partials/tasks.html").sign()
        assert len(signatures) == 2
        clock[0] += 1
        later = ref.sign()
        assert len({first, other, later}) == 3
        assert LiveRef.load(first) == LiveRef.load(later) == ref
    checked = URLSafeTimedSerializer(str(app.secret_key), salt=SALT)
    assert checked.loads(later, return_timestamp=True)[1].timestamp() == clock[0]


def test_a_value_read_from_an_answer_seen_before_is_not_digested_again(
    monkeypatch: Any,
) -> None:
    digested: list[Any] = []
    digest = live.value_digest
    monkeypatch.setattr(live, "_DIGESTS", Memo(live._MAX_DIGESTS))
    monkeypatch.setattr(live, "value_digest", lambda raw: digested.append(raw) or digest(raw))
    seen, other = (
        Outcome(encoded=[1.0], origin=(b"answer", 0)),
        Outcome(encoded=[2.0], origin=(b"b", 0)),
    )
    hashes = [live.outcome_hash(outcome) for outcome in (seen, seen, other, seen)]
    assert hashes == [digest([1.0]), digest([1.0]), digest([2.0]), digest([1.0])]
    assert digested == [[1.0], [2.0]]


def test_references_signed_with_itsdangerous_defaults_still_verify(app: Flask) -> None:
    payload = ["tasks:list", {"list": "a"}, "partials/tasks.html", "div", ""]
    with app.test_request_context():
        signed = URLSafeTimedSerializer(app.secret_key, salt=live.SALT).dumps(payload)
        assert LiveRef.load(signed) == LiveRef("tasks:list", {"list": "a"}, "partials/tasks.html")
        assert LiveRef.load(LiveRef("tasks:list", {"list": "a"}, "partials/tasks.html").sign())


def test_references_need_a_secret_key(app: Flask) -> None:
    app.secret_key = None
    with app.test_request_context(), pytest.raises(ConvexConfigError, match="SECRET_KEY"):
        LiveRef("tasks:list", {}, "partials/tasks.html").sign()


@pytest.mark.parametrize(
    "call",
    [
        'live(p, "partials/count.html", "section", "big")',
        'live(p, "partials/count.html", tag="section", class="big")',
        'live(p, "partials/count.html", tag="section", css_class="big")',
    ],
)
def test_live_takes_its_wrapper_by_position_or_by_name(
    app: Flask, convex: FakeConvex, call: str
) -> None:
    template = '{% from "convex/macros.html" import live %}{{ ' + call + " }}"
    with app.test_request_context():
        html = render_template_string(template, p=preload_query(api.counter.get))
    wrapper = soup(html.encode()).select_one("section.convex-live.big")
    assert wrapper is not None
    assert wrapper["data-convex-ref"]


def test_live_refuses_both_class_and_css_class(app: Flask, convex: FakeConvex) -> None:
    call = 'live(p, "partials/count.html", class="a", css_class="b")'
    template = '{% from "convex/macros.html" import live %}{{ ' + call + " }}"
    with app.test_request_context(), pytest.raises(TypeError, match="not both"):
        render_template_string(template, p=preload_query(api.counter.get))


def test_an_unsafe_wrapper_tag_is_refused(app: Flask, convex: FakeConvex) -> None:
    template = (
        '{% from "convex/macros.html" import live %}{{ live(p, "partials/count.html", tag=t) }}'
    )
    with app.test_request_context():
        preloaded = preload_query(api.counter.get)
        with pytest.raises(ValueError, match="HTML element name"):
            render_template_string(template, p=preloaded, t='div onclick="alert(1)"')


def test_an_unchanged_poll_answers_204_without_rendering(
    client: FlaskClient, convex: FakeConvex, rendered: list[str]
) -> None:
    fragments = fragments_of(client.get("/").data)
    headers = same_site_headers(client)
    rendered.clear()
    answer = client.post("/_convex/poll", json={"fragments": fragments}, headers=headers)
    assert answer.status_code == 204
    assert rendered == []
    assert convex.batches.call_count == 2
    assert convex.batched() == ["tasks:list", "counter:get"]
    assert convex.batches.calls[-1].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_poll_swaps_only_the_changed_fragments(client: FlaskClient, convex: FakeConvex) -> None:
    page = client.get("/").data
    tasks, count = fragments_of(page)
    assert element(page, tasks["id"]).name == "ul"
    convex.data["counter:get"] = 3.0
    answer = poll(client, [tasks, count])
    assert answer.status_code == 200
    (swap,) = soup(answer.data).select("[hx-swap-oob]")
    assert (swap["id"], swap["hx-swap-oob"], swap.get_text()) == (count["id"], "true", "3.0")
    assert swap["data-convex-hash"] != count["hash"]
    assert (
        poll(client, [tasks, {**count, "hash": str(swap["data-convex-hash"])}]).status_code == 204
    )


def test_a_bad_reference_gets_400_and_only_its_fragment_shows_an_error(
    client: FlaskClient, convex: FakeConvex
) -> None:
    tasks, count = fragments_of(client.get("/").data)
    convex.data["counter:get"] = 7.0
    answer = poll(client, [{**tasks, "ref": tasks["ref"][:-3] + "xyz"}, count])
    assert answer.status_code == 400
    broken, fresh = soup(answer.data).select("[hx-swap-oob]")
    assert broken["id"] == tasks["id"]
    assert "convex-error" in broken["class"]
    assert not broken.has_attr("data-convex-ref")
    assert "Reload the page" in broken.get_text()
    assert (fresh["id"], fresh.get_text()) == (count["id"], "7.0")


def test_a_failing_query_shows_an_error_state_and_keeps_polling(
    client: FlaskClient, convex: FakeConvex
) -> None:
    tasks, count = fragments_of(client.get("/").data)
    convex.data["counter:get"] = RuntimeError("Uncaught Error: boom")
    answer = poll(client, [tasks, count])
    (swap,) = soup(answer.data).select("[hx-swap-oob]")
    assert answer.status_code == 200
    assert "convex-error" in swap["class"]
    assert "boom" not in swap.get_text()
    assert swap["data-convex-ref"]
    assert (
        poll(client, [tasks, {**count, "hash": str(swap["data-convex-hash"])}]).status_code == 204
    )


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (httpx.ConnectError("refused"), 503),
        (httpx.Response(500, json={"code": "InternalServerError", "message": "x"}), 502),
    ],
)
def test_when_convex_fails_the_poll_changes_nothing(
    client: FlaskClient, convex: FakeConvex, failure: Any, status: int
) -> None:
    fragments = fragments_of(client.get("/").data)
    convex.batches.side_effect = failure
    answer = poll(client, fragments)
    assert answer.status_code == status
    assert answer.data == b""
    assert answer.headers["Retry-After"]


def test_a_reference_listed_under_many_ids_runs_and_renders_once(
    client: FlaskClient, convex: FakeConvex, rendered: list[str]
) -> None:
    tasks, _ = fragments_of(client.get("/").data)
    resigned = fragments_of(client.get("/").data)[0]["ref"]
    copies = [{"id": f"copy-{n}", "ref": tasks["ref"], "hash": "old"} for n in range(400)]
    copies += [{"id": f"again-{n}", "ref": resigned, "hash": "old"} for n in range(99)]
    rendered.clear()
    answer = poll(client, [*copies, tasks])
    assert answer.status_code == 200
    swaps = soup(answer.data).select("[hx-swap-oob]")
    # Every id that showed something else is swapped; the one already current is not.
    assert [swap["id"] for swap in swaps] == [copy["id"] for copy in copies]
    assert rendered.count("partials/tasks.html") == 1
    assert convex.batched() == ["tasks:list"]


def test_a_poll_whose_answer_would_exceed_the_limit_is_refused(
    app: Flask, client: FlaskClient, convex: FakeConvex, rendered: list[str]
) -> None:
    app.config["CONVEX_LIVE_MAX_ANSWER"] = 10_000
    convex.data["tasks:list"] = [{"text": "x" * 100}] * 10  # about 1.2 kB per fragment
    tasks, count = fragments_of(client.get("/").data)
    rendered.clear()
    fits = [{**tasks, "id": f"copy-{n}", "hash": "old"} for n in range(5)]
    assert poll(client, fits).status_code == 200
    too_many = [{**tasks, "id": f"copy-{n}", "hash": "old"} for n in range(499)]
    answer = poll(client, [*too_many, count])
    assert answer.status_code == 413
    assert b"CONVEX_LIVE_MAX_ANSWER" in answer.data
    assert rendered.count("partials/tasks.html") == 2  # once per poll


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"fragments": "all"}, b"JSON list"),
        ({"fragments": [{"id": "x", "ref": 1, "hash": ""}]}, b"string id, ref and hash"),
        ({"fragments": [{"id": '"><script>', "ref": "r", "hash": ""}]}, b"invalid element id"),
        ({"fragments": [{"id": "a", "ref": "r", "hash": ""}] * 501}, b"At most 500"),
    ],
)
def test_a_malformed_poll_is_refused(
    client: FlaskClient, convex: FakeConvex, body: Any, problem: bytes
) -> None:
    answer = client.post("/_convex/poll", json=body, headers=same_site_headers(client))
    assert answer.status_code == 400
    assert problem in answer.data
    assert not convex.batches.called


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ('{"fragments": ' + "[" * 100_000 + "]" * 100_000 + "}", b"nested too deeply"),
        ('{"fragments": [', b"Not valid JSON"),
    ],
    ids=["100000-levels", "truncated"],
)
def test_a_poll_that_is_not_json_is_refused_saying_why(
    client: FlaskClient, convex: FakeConvex, data: str, problem: bytes
) -> None:
    headers = {**same_site_headers(client), "Content-Type": "application/json"}
    answer = client.post("/_convex/poll", data=data, headers=headers)
    assert answer.status_code == 400
    assert problem in answer.data


def test_a_poll_without_the_csrf_token_is_refused(client: FlaskClient, convex: FakeConvex) -> None:
    fragments = fragments_of(client.get("/").data)
    answer = client.post(
        "/_convex/poll", json={"fragments": fragments}, headers={"Origin": "http://localhost"}
    )
    assert answer.status_code == 400
    assert convex.batches.call_count == 1


LAZY_PAGE = """{% from "convex/macros.html" import lazy %}
{{ lazy("tasks:list", {"list": "home"}, "partials/tasks.html", tag="ul") }}
{% call lazy(q, {}, "partials/count.html") %}<i>counting</i>{% endcall %}"""


def test_lazy_renders_a_loading_state_that_the_first_poll_fills(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    app.add_url_rule("/lazy", "lazy", lambda: render_template_string(LAZY_PAGE, q=api.counter.get))
    page = client.get("/lazy")
    assert not convex.batches.called
    tasks, count = soup(page.data).select("[data-convex-ref]")
    assert (tasks.name, tasks["aria-busy"], tasks["data-convex-hash"]) == ("ul", "true", "")
    assert tasks.get_text(strip=True) == "Loading…"
    assert count.select_one("i").get_text() == "counting"  # type: ignore[union-attr]
    answer = poll(client, fragments_of(page.data))
    filled = soup(answer.data).select("[hx-swap-oob]")
    assert [swap["id"] for swap in filled] == [tasks["id"], count["id"]]
    assert [li.get_text() for li in filled[0].select("li")] == ["Buy milk", "Walk <the> dog"]
    assert not filled[0].has_attr("aria-busy")
    assert convex.batches.call_count == 1


def test_a_plain_text_loading_state_is_escaped(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    template = '{{ convex_lazy("tasks:list", {}, "partials/tasks.html", loading=text) }}'
    text = "<script>alert(1)</script> & more"
    app.add_url_rule("/lazy", "lazy", lambda: render_template_string(template, text=text))
    (fragment,) = soup(client.get("/lazy").data).select("[data-convex-ref]")
    assert fragment.get_text() == text
    assert not fragment.select("script")


def test_the_same_fragment_twice_on_a_page_gets_distinct_ids(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    app.add_url_rule(
        "/twice",
        "twice",
        lambda: render_template_string(LAZY_PAGE + LAZY_PAGE, q=api.counter.get),
    )
    ids = [fragment["id"] for fragment in fragments_of(client.get("/twice").data)]
    assert len(set(ids)) == 4


def test_preloaded_json_cannot_break_out_of_its_script_element(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    attack = "</script><script>alert(1)</script><!-- '&"
    convex.data["tasks:list"] = [{"text": attack}]
    template = (
        '{% from "convex/macros.html" import preloaded_json %}'
        '{{ preloaded_json(p, "tasks-data") }}<p id="after">after</p>'
    )
    app.add_url_rule(
        "/json",
        "json",
        lambda: render_template_string(template, p=preload_query(api.tasks.list, {"list": "home"})),
    )
    parsed = soup(client.get("/json").data)
    (script,) = parsed.select("script")
    assert script["type"] == "application/json"
    assert json.loads(script.get_text()) == {
        "_name": "tasks:list",
        "_argsJSON": {"list": "home"},
        "_valueJSON": [{"text": attack}],
    }
    assert parsed.select_one("#after") is not None
    assert "<!--" not in script.get_text()


def test_the_vendored_files_are_htmx_2_and_the_local_deployments_convex_with_licenses(
    app: Flask,
) -> None:
    static = Path(str(app.blueprints["convex"].static_folder))
    vendored = dict(line.split() for line in (static / "VENDORED").read_text().splitlines())
    server = json.loads((SERVER_SOURCE / "package.json").read_text())
    assert vendored["htmx.org"].split(".")[0] == "2"
    assert vendored["convex"] == server["dependencies"]["convex"]
    assert "Zero" in (static / "htmx.LICENSE").read_text()
    assert "Apache License" in (static / "convex.LICENSE").read_text()
    assert "ConvexClient" in (static / "convex.min.js").read_text()
    assert not list(static.glob("htmx-ext-sse*"))


@pytest.mark.integration
def test_against_the_local_deployment_a_poll_sees_a_change_made_elsewhere(
    convex_url: str,
) -> None:
    app = make_app(user_token=None, CONVEX_URL=convex_url)
    page_template = (
        '{% from "convex/macros.html" import live %}{{ live(c, "partials/count.html") }}'
    )
    app.add_url_rule(
        "/counter",
        "counter",
        lambda: render_template_string(
            page_template, c=preload_query(api.counter.get, {"name": "visits"})
        ),
    )
    client = app.test_client()
    fragments = fragments_of(client.get("/counter").data)
    assert poll(client, fragments).status_code == 204
    with app.test_request_context():
        fetch_mutation(api.counter.increment, {"name": "visits", "by": 5})
    answer = poll(client, fragments)
    assert answer.status_code == 200
    (swap,) = soup(answer.data).select("[hx-swap-oob]")
    assert swap.get_text() == "5.0"


def test_polls_of_one_query_and_token_within_the_share_window_ask_convex_once(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    app.config["CONVEX_POLL_SHARE"] = 60.0
    fragments = fragments_of(client.get("/").data)
    assert poll(client, fragments).status_code == 204
    assert poll(client, fragments).status_code == 204
    assert convex.batches.call_count == 2


def test_a_shared_answer_never_hides_a_difference_from_the_page(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    app.config["CONVEX_POLL_SHARE"] = 60.0
    tasks, count = fragments_of(client.get("/").data)
    poll(client, [tasks, count])
    answer = poll(client, [tasks, {**count, "hash": "shown-by-an-older-page"}])
    assert answer.status_code == 200
    assert [swap["id"] for swap in soup(answer.data).select("[hx-swap-oob]")] == [count["id"]]
    assert convex.batched() == ["counter:get"]


def test_a_write_through_this_process_ends_the_sharing(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    app.config["CONVEX_POLL_SHARE"] = 60.0
    convex.mutations["counter:increment"] = lambda args: convex.data.update({"counter:get": 3.0})

    @app.post("/bump")
    def bump() -> str:
        fetch_mutation(api.counter.increment)
        return ""

    tasks, count = fragments_of(client.get("/").data)
    poll(client, [tasks, count])
    client.post("/bump")
    answer = poll(client, [tasks, count])
    assert answer.status_code == 200
    assert soup(answer.data).select_one(f"#{count['id']}").get_text() == "3.0"  # type: ignore[union-attr]


def test_pollers_with_different_tokens_never_share(
    app: Flask, client: FlaskClient, convex: FakeConvex
) -> None:
    app.config["CONVEX_POLL_SHARE"] = 60.0
    app.extensions["convex"].hooks.token_loader = lambda: request.headers.get("X-Token")
    fragments = fragments_of(client.get("/").data)
    poll(client, fragments, **{"X-Token": "alice"})
    poll(client, fragments, **{"X-Token": "bob"})
    sent = [call.request.headers["Authorization"] for call in convex.batches.calls[1:]]
    assert sent == ["Bearer alice", "Bearer bob"]


# Properties: no poll body, however strange, makes the server fail

FRAGMENT_LISTS = st.lists(
    st.fixed_dictionaries(
        {}, optional={"id": JSON_VALUES | st.text(), "ref": JSON_VALUES, "hash": JSON_VALUES}
    ),
    max_size=4,
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    body=st.one_of(
        JSON_VALUES.map(json.dumps),
        JSON_VALUES.map(lambda fragments: json.dumps({"fragments": fragments})),
        FRAGMENT_LISTS.map(lambda fragments: json.dumps({"fragments": fragments})),
        st.binary(max_size=64),
    ),
    keep=st.lists(st.integers(0, 1), max_size=3),
)
def test_no_poll_body_makes_the_server_fail(
    client: FlaskClient, convex: FakeConvex, body: str | bytes, keep: list[int]
) -> None:
    page = fragments_of(client.get("/").data)
    headers = {**same_site_headers(client), "Content-Type": "application/json"}
    assert client.post("/_convex/poll", data=body, headers=headers).status_code < 500
    # Real references mixed with made-up ones and changed hashes.
    mixed = [{**page[index], "hash": "x"} for index in keep] + [
        {"id": "a", "ref": str(body)[:40], "hash": ""}
    ]
    assert (
        client.post("/_convex/poll", json={"fragments": mixed}, headers=headers).status_code < 500
    )


def test_a_wrappers_attributes_are_escaped_and_its_body_kept(app: Flask) -> None:
    args = {"q": '"><b>bold</b>'}
    ref = LiveRef("tasks:list", args, "partials/tasks.html", "div", 'x" onclick="evil()')
    with app.test_request_context():
        html = render_fragment(
            ref, Outcome(value=[], ts=7), "abc", "convex-1", oob=True, pieces=["<i>", "ok</i>"]
        )
    wrapper = element(html, "convex-1")
    assert wrapper.get("onclick") is None
    assert wrapper.select("b") == []
    assert json.loads(str(wrapper["data-convex-args"])) == args
    assert wrapper["data-convex-ts"] == "7"
    assert wrapper["hx-swap-oob"] == "true"
    assert [str(child) for child in wrapper.children] == ["<i>ok</i>"]
