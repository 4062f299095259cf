"""A Flask app with live pages over a fake Convex, shared by the live, action and CSRF tests."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx
from bs4 import BeautifulSoup, Tag
from flask import Flask, render_template, render_template_string
from flask.testing import FlaskClient
from flask_login import LoginManager
from hypothesis import strategies as st
from jinja2 import ChoiceLoader, DictLoader

from flask_convex import Convex, api, preload_query

URL = "https://happy-otter-123.convex.cloud"

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON value, for bodies a page could never have sent."""
TOKEN = "token-of-alice"

TEMPLATES = {
    "page.html": """{% from "convex/macros.html" import live %}<!doctype html>
<html><head><title>Tasks</title>{{ convex_scripts() }}</head><body>
{{ live(tasks, "partials/tasks.html", tag="ul", class="tasks") }}
{{ live(count, "partials/count.html") }}
</body></html>""",
    "partials/tasks.html": """{% for task in value %}<li>{{ task.text }}</li>{% endfor %}
<p class="context">{{ current_user.is_authenticated }} {{ request.path }} {{ url_for("index") }}
</p>""",
    "partials/count.html": "<b>{{ value }}</b>",
    "partials/task_form.html": """<form method="post" action="/tasks">
{% if error %}<p class="error">{{ error.message }}</p>{% endif %}
<input name="text" value="{{ form.get('text', '') }}"></form>""",
}


class ThrownError(Exception):
    """Raised by a fake mutation to answer as a Convex function that threw ConvexError(data)."""

    def __init__(self, data: Any) -> None:
        super().__init__(data)
        self.data = data


@dataclass
class FakeConvex:
    """A deployment stand-in: queries answer from `data` (an Exception fails the query),
    mutations run the callables in `mutations`."""

    router: respx.MockRouter
    data: dict[str, Any] = field(default_factory=dict)
    mutations: dict[str, Callable[[dict[str, Any]], Any]] = field(default_factory=dict)
    ts: int | None = None
    """The snapshot timestamp batches answer with, if any."""

    def __post_init__(self) -> None:
        self.batches = self.router.post("/api/query_batch").mock(side_effect=self._batch)
        self.mutation_route = self.router.post("/api/mutation").mock(side_effect=self._mutation)

    def batched(self, index: int = -1) -> list[str]:
        """The query paths sent in one batch request."""
        body = json.loads(self.batches.calls[index].request.content)
        return [query["path"] for query in body["queries"]]

    def _batch(self, request: httpx.Request) -> httpx.Response:
        results = []
        for query in json.loads(request.content)["queries"]:
            value = self.data[query["path"]]
            if isinstance(value, Exception):
                results.append({"status": "error", "errorMessage": str(value)})
            else:
                results.append({"status": "success", "value": value})
        answer: dict[str, Any] = {"results": results}
        if self.ts is not None:
            answer["ts"] = base64.b64encode(self.ts.to_bytes(8, "little")).decode()
        return httpx.Response(200, json=answer)

    def _mutation(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        try:
            value = self.mutations[body["path"]](body["args"])
        except ThrownError as thrown:
            error = {"status": "error", "errorMessage": "Uncaught", "errorData": thrown.data}
            return httpx.Response(200, json=error)
        return httpx.Response(200, json={"status": "success", "value": value})


@contextmanager
def fake_convex(tasks: list[dict[str, Any]]) -> Iterator[FakeConvex]:
    """A fake deployment at URL whose tasks:list answers `tasks` and counter:get 2.0."""
    with respx.mock(base_url=URL, assert_all_called=False) as router:
        yield FakeConvex(router, data={"tasks:list": tasks, "counter:get": 2.0})


def make_app(user_token: str | None = TOKEN, **config: Any) -> Flask:
    """An app whose "/" preloads two queries and shows them live; "/token" gives a CSRF token."""
    app = Flask(__name__)
    settings = {"SECRET_KEY": "test-secret", "CONVEX_URL": URL, "TESTING": True}
    # Every poll asks the fake deployment, so tests can count what each one sends.
    app.config.update({**settings, "CONVEX_POLL_SHARE": 0, **config})
    app.jinja_env.loader = ChoiceLoader([DictLoader(TEMPLATES), app.create_global_jinja_loader()])
    LoginManager(app).user_loader(lambda user_id: None)
    convex = Convex(app)
    convex.token_loader(lambda: user_token)

    @app.get("/")
    def index() -> str:
        tasks = preload_query(api.tasks.list, {"list": "home"})
        count = preload_query(api.counter.get)
        return render_template("page.html", tasks=tasks, count=count)

    @app.get("/token")
    def token() -> str:
        return render_template_string("{{ convex_csrf_token() }}")

    return app


def soup(html: str | bytes) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def fragments_of(html: str | bytes) -> list[dict[str, str]]:
    """The live fragments of a page, as flask-convex.js reports them."""
    return [
        {
            "id": str(el["id"]),
            "ref": str(el["data-convex-ref"]),
            "hash": str(el["data-convex-hash"]),
        }
        for el in soup(html).select("[data-convex-ref]")
    ]


def element(html: str | bytes, element_id: str) -> Tag:
    found = soup(html).find(id=element_id)
    assert isinstance(found, Tag), f"no element #{element_id}"
    return found


def same_site_headers(client: FlaskClient, **extra: str) -> dict[str, str]:
    """What a browser page of this site sends with a POST: Origin and the CSRF token."""
    token = client.get("/token").get_data(as_text=True)
    return {"Origin": "http://localhost", "X-CSRF-Token": token, **extra}


HTMX = {"HX-Request": "true", "HX-Current-URL": "http://localhost/"}
