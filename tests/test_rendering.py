"""`partial_pieces` renders what `flask.render_template` renders, signals included."""

from __future__ import annotations

import traceback
from typing import Any

import pytest
from flask import Blueprint, Flask, render_template
from flask.signals import before_render_template, template_rendered
from jinja2 import DictLoader, StrictUndefined, UndefinedError

from flask_convex.rendering import partial_pieces

TEMPLATES = {
    "row.html": (
        "{{ value }}|{{ shade }}|{{ site }}|{{ section }}|{{ late() }}|{{ request.path }}"
        "|{% for item in items %}{{ item }},{% endfor %}|{{ '<b>' }}"
    ),
    "broken.html": "first line\n{{ missing.attribute }}",
}


def render_partial(name: str, **context: Any) -> str:
    """The pieces joined: the text `flask.render_template` would give."""
    return "".join(partial_pieces(name, **context))


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.jinja_env.loader = DictLoader(TEMPLATES)
    app.jinja_env.undefined = StrictUndefined
    app.jinja_env.globals["site"] = "global"
    app.context_processor(lambda: {"shade": "processor", "section": "app"})
    part = Blueprint("part", __name__)
    part.context_processor(lambda: {"section": "blueprint"})

    @part.get("/part")
    def view() -> str:
        return render_partial("row.html", value=1, items=["a", "b"])

    app.register_blueprint(part)
    return app


def test_it_renders_what_render_template_renders(app: Flask) -> None:
    with app.test_request_context("/page"):
        # A global added after the template was first loaded is seen, as Jinja sees it.
        render_partial("row.html", value=0, late=str, items=[])
        app.jinja_env.globals["late"] = lambda: "added later"
        ours = render_partial("row.html", value="v", items=[1, 2])
        theirs = render_template("row.html", value="v", items=[1, 2])
    assert ours == theirs == "v|processor|global|app|added later|/page|1,2,|&lt;b&gt;"


def test_the_view_context_wins_and_blueprint_processors_apply(app: Flask) -> None:
    with app.test_request_context("/page"):
        app.jinja_env.globals["late"] = lambda: ""
        shown = render_partial("row.html", value=2, shade="mine", site="mine", items=[])
    assert shown.startswith("2|mine|mine|app|")
    app.jinja_env.globals["late"] = lambda: ""
    assert app.test_client().get("/part").text.startswith("1|processor|global|blueprint|")


def test_it_sends_flasks_template_signals(app: Flask) -> None:
    app.jinja_env.globals["late"] = lambda: ""
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def before(sender: Flask, template: Any, context: dict[str, Any], **_: Any) -> None:
        seen.append(("before", template.name, dict(context)))

    def after(sender: Flask, template: Any, context: dict[str, Any], **_: Any) -> None:
        seen.append(("after", template.name, dict(context)))

    with (
        before_render_template.connected_to(before, app),
        template_rendered.connected_to(after, app),
        app.test_request_context("/page"),
    ):
        render_partial("row.html", value=3, items=[])
    assert [(when, name) for when, name, _ in seen] == [
        ("before", "row.html"),
        ("after", "row.html"),
    ]
    assert all(context["value"] == 3 and context["shade"] == "processor" for *_, context in seen)


def test_a_template_error_points_at_the_template_line(app: Flask) -> None:
    with app.test_request_context("/page"), pytest.raises(UndefinedError) as raised:
        render_partial("broken.html")
    frames = [(frame.name, frame.lineno) for frame in traceback.extract_tb(raised.tb)]
    assert ("top-level template code", 2) in frames
