"""Partials rendered as `flask.render_template` renders them, for less work per render.

A page renders each live fragment's partial on its own, and a re-render or a
paginated list renders many. Jinja's `Template.render` copies the environment's
globals into every new context through a `ChainMap`, one Python-level lookup per
global; `partial_pieces` merges them at C speed and renders the same context.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import Any

from flask.signals import before_render_template, template_rendered
from jinja2 import Template

from . import current


def partial_pieces(name: str, **context: Any) -> list[str]:
    """What `flask.render_template(name, **context)` renders (the same context processors
    and signals), in the pieces Jinja rendered, for a caller to join with its own."""
    app = current.app()
    template: Template = app.jinja_env.get_or_select_template(name)
    app.update_template_context(context)
    # Sending costs a few calls even to nobody, and a page renders many partials.
    if before_render_template.receivers:
        before_render_template.send(
            app, _async_wrapper=app.ensure_sync, template=template, context=context
        )
    variables = _flat(template.globals)
    variables.update(context)
    try:
        pieces = list(template.root_render_func(template.new_context(variables, shared=True)))
    except Exception:
        # As `Template.render`: the traceback points at the template's own lines.
        template.environment.handle_exception()
    if template_rendered.receivers:
        template_rendered.send(
            app, _async_wrapper=app.ensure_sync, template=template, context=context
        )
    return pieces


def _flat(variables: Mapping[str, Any]) -> dict[str, Any]:
    """`dict(variables)`, merging a ChainMap's maps whole instead of key by key."""
    if not isinstance(variables, ChainMap):
        return dict(variables)
    flat: dict[str, Any] = {}
    for layer in reversed(variables.maps):
        flat.update(layer)
    return flat
