"""Server actions: POST views that call Convex, then refresh the live fragments they changed."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, ParamSpec, overload
from urllib.parse import urlsplit

from flask import Response, abort, has_request_context, redirect, render_template
from flask.typing import ResponseReturnValue
from htmx_flask.requests import HtmxHeaders
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from . import current
from .context import peek_request_state
from .csrf import is_same_origin_url, protect
from .errors import (
    ConvexConfigError,
    ConvexError,
    ConvexFlaskError,
    ConvexOutcomeUnknownError,
    status_for,
)
from .functions import FunctionRef, function_name
from .live import LiveRef, PageFragment, blueprint, parse_page_fragments, read_json, refresh
from .values import encode_args

P = ParamSpec("P")

LIVE_FIELD: Final = "_convex_live"
"""The form field in which flask-convex.js sends the page's live fragments with htmx requests."""

EVENT: Final = "convex:revalidated"
"""The HX-Trigger event of an htmx action's answer; detail `{"functions": [..], "paths": [..]}`."""

FAILED: Final = "Something went wrong. Please try again."
"""What a failed action tells the user when nothing was saved."""

MAYBE_SAVED: Final = (
    "This may have been saved, but it could not be confirmed. "
    "Reload the page to check before trying again."
)
"""What a failed action tells the user when a write was applied, or may have been."""

_STATE_KEY: Final = "flask_convex.revalidation"
_FORM_STATE_KEY: Final = "flask_convex.form_state"


@dataclass
class Revalidation:
    """What a server action declared changed: functions (with an args key, or None) and paths."""

    functions: list[tuple[str, str | None]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.functions or self.paths)

    def affects(self, ref: LiveRef, page_path: str | None) -> bool:
        """Whether a fragment of the page at `page_path` shows something that changed."""
        if page_path is not None and _normal_path(page_path) in map(_normal_path, self.paths):
            return True
        return any(ref.matches(name, key) for name, key in self.functions)

    def detail(self) -> dict[str, list[str]]:
        """The HX-Trigger event detail naming what changed."""
        names = list(dict.fromkeys(name for name, _ in self.functions))
        return {"functions": names, "paths": list(dict.fromkeys(self.paths))}


@dataclass(frozen=True, slots=True)
class ActionError:
    """What a form partial gets as `error` when its action fails.

    `message` is text for people; `data` is the ConvexError's data (None for
    other failures); `status` is the HTTP status of the answer.
    """

    message: str
    data: Any = None
    status: int = 500


def revalidate(function: FunctionRef, args: Mapping[str, Any] | None = None) -> None:
    """Declare that a query's results changed; with `args`, only that call's.

    Inside a server action: its htmx answer re-renders the page's live fragments
    of that query.
    """
    key = None if args is None else encode_args(args)[1]
    _revalidation().functions.append((function_name(function), key))


def revalidate_path(path: str) -> None:
    """Declare that everything on the page at `path` changed, as Next.js `revalidatePath`."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"revalidate_path() takes a path starting with '/', not {path!r}")
    _revalidation().paths.append(path)


@overload
def server_action(view: Callable[P, Any], /) -> Callable[P, ResponseReturnValue]: ...


@overload
def server_action(
    *, form: str | None = None
) -> Callable[[Callable[P, Any]], Callable[P, ResponseReturnValue]]: ...


def server_action(view: Callable[P, Any] | None = None, /, *, form: str | None = None) -> Any:
    """Turn a POST view into a server action; use bare or as `@server_action(form="...")`.

    The request must be same-origin, carry the CSRF token and fit in
    CONVEX_ACTION_MAX_BODY. The view calls `fetch_mutation`/`fetch_action` and
    `revalidate(...)`/`revalidate_path(...)`, and returns None or its own response.

    - htmx request: 200 whose body is the `form` partial rendered afresh (`form`
      empty, `error` None; nothing without `form=`) followed by out-of-band swaps
      of the page's live fragments that the revalidation affects, and an
      HX-Trigger `convex:revalidated` event merged into any the view set.
    - plain form post: 303 to the `next` form field or the Referer when they are
      on this site, else to the site root.
    - ConvexError: 422 with the `form` partial re-rendered with the user's input
      (`form` is `request.form`) and `error`, an ActionError; for a plain form
      post, the whole page it came from (its Referer) is rendered again, its form
      partial seeing the same `form` and `error`; without `form=`,
      convex/action_error.html. Any other failure is logged and answered the
      same way with a generic message and status 500 (502/503 if Convex failed),
      or, when a write was sent (ConvexOutcomeUnknownError, 504) or made before
      the failure, a message saying it may have been saved and to reload before
      retrying. No live fragment is updated by a failed action.

    Views may be async. flask-convex.js sends the page's live fragments in the
    `_convex_live` form field of htmx requests.
    """

    def decorate(view: Callable[P, Any]) -> Callable[P, ResponseReturnValue]:
        @functools.wraps(view)
        def action(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            protect()
            fragments = _page_fragments()
            revalidation = current.request().environ[_STATE_KEY] = Revalidation()
            app = current.app()
            try:
                result = app.ensure_sync(view)(*args, **kwargs)
                return _succeeded(result, revalidation, fragments, form)
            except HTTPException:
                raise
            except ConvexError as error:
                return _failed(_convex_error(error), form)
            except Exception as error:
                app.log_exception(sys.exc_info())
                return _failed(_failure(error), form)

        return action

    return decorate if view is None else decorate(view)


def _succeeded(
    result: Any, revalidation: Revalidation, fragments: list[PageFragment], form: str | None
) -> ResponseReturnValue:
    htmx = _is_htmx()
    if result is None and not htmx:
        return redirect(_back_url(), 303)
    if result is None:
        result = render_template(form, form=MultiDict(), error=None) if form else ""
    response = current.app().make_response(result)
    if htmx and revalidation:
        swaps = _affected_swaps(revalidation, fragments)
        if swaps and response.mimetype == "text/html" and not response.is_streamed:
            response.set_data(response.get_data() + "".join(swaps).encode())
        _trigger(response, EVENT, revalidation.detail())
    return response


def _affected_swaps(revalidation: Revalidation, fragments: list[PageFragment]) -> list[Markup]:
    request = current.request()
    page = HtmxHeaders(request.headers).current_url or request.referrer
    page_path = urlsplit(page).path if page else None
    try:
        result = refresh(fragments, lambda ref: revalidation.affects(ref, page_path))
    except ConvexFlaskError as error:
        # The change is made; the page's next poll shows it.
        current.app().logger.warning("Revalidated fragments not rendered: %s", error)
        return []
    if result.too_large:
        message = "Revalidated fragments exceed CONVEX_LIVE_MAX_ANSWER: not sent"
        current.app().logger.warning(message)
        return []
    return result.swaps


def _failed(error: ActionError, form: str | None) -> Response:
    if form and not _is_htmx():
        try:
            page = _referring_page(error)
        except Exception:
            # The form partial alone still says what happened.
            current.app().log_exception(sys.exc_info())
            page = None
        if page is not None:
            return page
    if form:
        body = render_template(form, form=current.request().form, error=error)
    else:
        body = render_template("convex/action_error.html", error=error)
    response = current.app().make_response((body, error.status))
    response.headers["X-Convex-Action"] = "form" if form else "error"
    return response


def _referring_page(error: ActionError) -> Response | None:
    """The page a form was posted from without JavaScript, rendered again showing `error`.

    None when the Referer is not another GET page of this app: then the form
    partial is answered alone.
    """
    app, request = current.app(), current.request()
    referrer = request.referrer
    if not referrer or not is_same_origin_url(referrer):
        return None
    adapter = app.url_map.bind_to_environ(request.environ)
    try:
        endpoint, values = adapter.match(urlsplit(referrer).path, method="GET")
    except HTTPException:
        return None
    if endpoint == request.endpoint:
        return None
    request.environ[_FORM_STATE_KEY] = {"form": request.form, "error": error}
    page = app.ensure_sync(app.view_functions[endpoint])(**values)
    response = app.make_response(page)
    response.status_code = error.status
    return response


@blueprint.app_context_processor
def _form_state() -> dict[str, Any]:
    """`form` and `error` for the form partial of a page rendered again by `_referring_page`."""
    if not has_request_context():
        return {}
    state: dict[str, Any] = current.request().environ.get(_FORM_STATE_KEY, {})
    return state


def _convex_error(error: ConvexError) -> ActionError:
    data = error.data
    if isinstance(data, str):
        message = data
    elif isinstance(data, Mapping) and isinstance(data.get("message"), str):
        message = data["message"]
    else:
        message = "The request was refused."
    return ActionError(message, data, 422)


def _failure(error: Exception) -> ActionError:
    state = peek_request_state()
    wrote = isinstance(error, ConvexOutcomeUnknownError) or (state is not None and state.wrote)
    return ActionError(MAYBE_SAVED if wrote else FAILED, status=status_for(error))


def _page_fragments() -> list[PageFragment]:
    raw = current.request().form.get(LIVE_FIELD)
    if raw is None:
        return []
    try:
        return parse_page_fragments(read_json(raw))
    except ValueError as error:
        abort(400, f"{LIVE_FIELD}: {error}")


def _back_url() -> str:
    request = current.request()
    for candidate in (request.form.get("next"), request.referrer):
        if candidate and is_same_origin_url(candidate):
            return candidate
    return request.script_root + "/"


def _trigger(response: Response, name: str, detail: Any) -> None:
    """Add an HX-Trigger event, keeping the events already in the header."""
    existing = response.headers.get("HX-Trigger", "").strip()
    events: dict[str, Any]
    if existing.startswith("{"):
        events = json.loads(existing)
    else:
        events = {event.strip(): {} for event in existing.split(",") if event.strip()}
    events[name] = detail
    response.headers["HX-Trigger"] = json.dumps(events, separators=(",", ":"))


def _revalidation() -> Revalidation:
    state = current.request().environ.get(_STATE_KEY) if has_request_context() else None
    if not isinstance(state, Revalidation):
        raise ConvexConfigError(
            "revalidate() and revalidate_path() work inside a view decorated with @server_action"
        )
    return state


def _is_htmx() -> bool:
    return bool(HtmxHeaders(current.request().headers))


def _normal_path(path: str) -> str:
    return path.rstrip("/") or "/"
