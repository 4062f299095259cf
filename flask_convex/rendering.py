"""Partials rendered as `flask.render_template` renders them, for less work per render.

A page renders each live fragment's partial on its own, and a re-render or a
paginated list renders many. Jinja's `Template.render` copies the environment's
globals into every new context through a `ChainMap`, one Python-level lookup per
global; `render_partial` merges them at C speed and renders the same context.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import Any

from flask import current_app
from flask.signals import before_render_template, template_rendered
from jinja2 import Template


def render_partial(name: str, **context: Any) -> str:
    """`flask.render_template(name, **context)`: the same context processors and signals."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    template: Template = app.jinja_env.get_or_select_template(name)
    app.update_template_context(context)
    before_render_template.send(
        app, _async_wrapper=app.ensure_sync, template=template, context=context
    )
    variables = _flat(template.globals)
    variables.update(context)
    environment = template.environment
    try:
        text: str = environment.concat(
            template.root_render_func(template.new_context(variables, shared=True))
        )
    except Exception:
        # As `Template.render`: the traceback points at the template's own lines.
        environment.handle_exception()
    template_rendered.send(app, _async_wrapper=app.ensure_sync, template=template, context=context)
    return text


def _flat(variables: Mapping[str, Any]) -> dict[str, Any]:
    """`dict(variables)`, merging a ChainMap's maps whole instead of key by key."""
    if not isinstance(variables, ChainMap):
        return dict(variables)
    flat: dict[str, Any] = {}
    for layer in reversed(variables.maps):
        flat.update(layer)
    return flat
