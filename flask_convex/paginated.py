"""Paginated queries kept live page by page: a server-rendered `usePaginatedQuery`.

`preload_paginated_query` runs a `.paginate()` query's first page in the
request's batch. The `paginated` macro renders each loaded page as a live
fragment whose end is pinned (`endCursor`), as `usePaginatedQuery` pins them:
rows inserted or deleted inside a page change only that page, and nothing is
lost or shown twice between pages. A page that grows past twice the initial
size is split at its `splitCursor`, as the official client does. The load-more
control asks `/_convex/more` for the next page; without JavaScript the macro
renders next/previous links whose `?cursor=` the view's preload reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from hashlib import blake2b
from typing import Any, Final, Literal
from urllib.parse import urlencode

from flask import Response, abort, render_template
from flask.typing import ResponseReturnValue
from itsdangerous import BadData
from markupsafe import Markup

from . import current
from .client import Call, Outcome
from .errors import ConvexError, LiveReferenceError, status_for
from .fetch import prepare
from .functions import FunctionRef
from .live import (
    LiveRef,
    blueprint,
    checked_tag,
    new_element_id,
    outcome_hash,
    register_kind,
    render_fragment,
    serializer,
    with_classes,
)
from .preload import Preloaded, preload_call
from .rendering import partial_pieces
from .state import get_state
from .values import JsonValue, args_key

Status = Literal["LoadingMore", "CanLoadMore", "Exhausted"]
"""A paginated list's status, as `usePaginatedQuery`'s."""

PAGE: Final = "page"
"""The `LiveRef.kind` of a page of a paginated list."""

CURSOR_SALT: Final = "flask-convex.cursor"
"""The itsdangerous salt of the `?cursor=` links of pages rendered without JavaScript."""

_OPTS: Final = "paginationOpts"
_SPLIT_ROUNDS: Final = 4
_MAX_TRAIL: Final = 20


@dataclass(frozen=True, slots=True)
class Page:
    """One loaded page: the reference that keeps it live and what its query answered."""

    ref: LiveRef
    outcome: Outcome

    @property
    def result(self) -> Mapping[str, Any] | None:
        """The `PaginationResult`, or None if the query failed or answered something else."""
        value = self.outcome.value
        if self.outcome.error is None and isinstance(value, Mapping) and "page" in value:
            return value
        return None

    @property
    def items(self) -> list[Any]:
        """The page's documents; none while its split is required (as `usePaginatedQuery`)."""
        result = self.result
        if result is None or result.get("pageStatus") == "SplitRequired":
            return []
        return list(result["page"])

    @property
    def pinned(self) -> bool:
        """Whether the page's end is fixed by an `endCursor`."""
        return _opts(self.ref).get("endCursor") is not None

    def pin(self) -> Page:
        """This page with its end pinned at the `continueCursor` its run answered."""
        result = self.result
        if self.pinned or result is None:
            return self
        return replace(self, ref=_with_opts(self.ref, endCursor=result["continueCursor"]))

    def halves(self) -> tuple[LiveRef, LiveRef] | None:
        """The two references this page splits into, or None when it should stay whole.

        As `usePaginatedQuery`: when the answer has a `splitCursor` and recommends
        or requires a split, or holds more than twice the initial number of items.
        """
        result = self.result
        split = None if result is None else result.get("splitCursor")
        if result is None or not isinstance(split, str):
            return None
        initial = self.ref.options.get("initial")
        oversized = isinstance(initial, int) and len(result["page"]) > 2 * initial
        if result.get("pageStatus") not in ("SplitRecommended", "SplitRequired") and not oversized:
            return None
        end = _opts(self.ref).get("endCursor") or result["continueCursor"]
        return (
            _with_opts(self.ref, endCursor=split),
            _with_opts(self.ref, cursor=split, endCursor=end),
        )


class PaginatedPreloaded:
    """A paginated query preloaded for the page, as `usePaginatedQuery`'s first page.

    Reading `results`, `status`, `cursor` or `pages` resolves the request's
    pending preloads in one batch, then pins and splits the page as the
    official client does.
    """

    def __init__(self, ref: LiveRef, first: Preloaded[Any], trail: list[str], token: str | None):
        self.ref = ref
        self.trail = trail
        self.token = token
        self._first = first
        self._pages: list[Page] | None = None

    @property
    def initial_num_items(self) -> int:
        """The first page's size."""
        size = _opts(self.ref)["numItems"]
        assert isinstance(size, int)
        return size

    @property
    def pages(self) -> list[Page]:
        """The loaded pages, ends pinned; raises the query's error if it failed."""
        if self._pages is None:
            outcome = self._first.outcome
            if self.trail and is_invalid_cursor(outcome.error):
                # A stale link: start again from the first page, as usePaginatedQuery resets.
                self.trail = []
                self.ref = _with_opts(self.ref, cursor=None)
                outcome = _run([self.ref], self.token)[0]
            outcome.unwrap()
            self._pages = settle([Page(self.ref, outcome)], self.token)
        return self._pages

    @property
    def results(self) -> list[Any]:
        """Every loaded item, in order."""
        return [item for page in self.pages for item in page.items]

    @property
    def status(self) -> Status:
        """ "CanLoadMore" or "Exhausted"; "LoadingMore" while a page still needs splitting."""
        return status_of(self.pages)

    @property
    def cursor(self) -> str | None:
        """The `continueCursor` the next page starts from."""
        result = self.pages[-1].result
        return None if result is None else result["continueCursor"]

    def next_url(self) -> str | None:
        """This page's URL showing the next page (for links without JavaScript), if any."""
        cursor = self.cursor
        if self.status != "CanLoadMore" or cursor is None:
            return None
        return _page_url(self.ref, [*self.trail, cursor][-_MAX_TRAIL:])

    def previous_url(self) -> str | None:
        """This page's URL showing the previous page, or None on the first."""
        self.pages  # noqa: B018 - a stale link resets the trail
        return _page_url(self.ref, self.trail[:-1]) if self.trail else None

    def __repr__(self) -> str:
        return f"<PaginatedPreloaded {self.ref.name} {self._first!r}>"


def preload_paginated_query(
    ref: FunctionRef,
    args: Mapping[str, Any] | None = None,
    *,
    initial_num_items: int,
    token: str | None = None,
) -> PaginatedPreloaded:
    """Preload the first page of a `.paginate()` query, in the request's batch.

    `args` are the query's other arguments (`paginationOpts` is added). Without
    JavaScript the page's next/previous links carry `?cursor=`, read here: the
    view then renders that page. A link that is not one of this list's is a 400.
    """
    if isinstance(initial_num_items, bool) or not isinstance(initial_num_items, int):
        raise TypeError(f"initial_num_items must be an int, not {initial_num_items!r}")
    if initial_num_items < 1:
        raise ValueError(f"initial_num_items must be positive, not {initial_num_items}")
    base = dict(args or {})
    if _OPTS in base:
        raise ValueError("preload_paginated_query() adds paginationOpts itself; leave it out")
    call = prepare(ref, base, None)
    trail = _read_trail(call)
    opts: dict[str, JsonValue] = {
        "numItems": initial_num_items,
        "cursor": trail[-1] if trail else None,
    }
    page_ref = LiveRef(
        call.path,
        {**call.args, _OPTS: opts},
        "",
        kind=PAGE,
        options={"initial": initial_num_items},
    )
    first = preload_call(_call(page_ref), token)
    return PaginatedPreloaded(page_ref, first, trail, token)


def settle(pages: Sequence[Page], token: str | None = None) -> list[Page]:
    """Pin every page's end, then split pages as `usePaginatedQuery` does (one batch a round).

    A split whose halves fail keeps the page whole.
    """
    settled = [page.pin() for page in pages]
    for _ in range(_SPLIT_ROUNDS):
        plans = {index: halves for index, page in enumerate(settled) if (halves := page.halves())}
        if not plans:
            break
        refs = [half for halves in plans.values() for half in halves]
        outcomes = iter(_run(refs, token))
        split: list[Page] = []
        for index, page in enumerate(settled):
            if index not in plans:
                split.append(page)
                continue
            loaded = [Page(half, next(outcomes)) for half in plans[index]]
            failed = any(half.outcome.error is not None for half in loaded)
            split.extend([page] if failed else loaded)
        settled = split
    return settled


def status_of(pages: Sequence[Page]) -> Status:
    """The status of a list showing `pages`, as `usePaginatedQuery` computes it."""
    if any(
        page.result is None or page.result.get("pageStatus") == "SplitRequired" for page in pages
    ):
        return "LoadingMore"
    return "Exhausted" if pages[-1].result["isDone"] else "CanLoadMore"  # type: ignore[index]


def is_invalid_cursor(error: Exception | None) -> bool:
    """Whether a query failed on a cursor it did not hand out, tested as the official client."""
    if isinstance(error, ConvexError):
        data = error.data
        if isinstance(data, Mapping) and data.get("isConvexSystemError") is True:
            return data.get("paginationError") == "InvalidCursor"
    return error is not None and "InvalidCursor" in str(error)


def paginated_list(
    preloaded: PaginatedPreloaded,
    item_partial: str,
    *,
    page_size: int | None = None,
    infinite: bool = False,
    tag: str = "div",
    css_class: str = "",
) -> Markup:
    """The loaded pages, each a live fragment, and the load-more control; backs `paginated`."""
    size = preloaded.initial_num_items if page_size is None else page_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"page_size must be a positive int, not {size!r}")
    tag = checked_tag(tag)
    options: dict[str, JsonValue] = {
        "initial": preloaded.initial_num_items,
        "size": size,
        "infinite": infinite,
    }
    pages = [
        replace(
            page,
            ref=replace(
                page.ref, partial=item_partial, tag=tag, css_class=css_class, options=options
            ),
        )
        for page in preloaded.pages
    ]
    return Markup(  # noqa: S704 - the output of an autoescaped template
        render_template(
            "convex/paginated.html",
            pages=_render_pages(pages),
            control=_control(pages, next_url=preloaded.next_url()),
            previous_url=preloaded.previous_url(),
        )
    )


@blueprint.get("/more")
def more() -> ResponseReturnValue:
    """The next page of a paginated list and a new load-more control, to replace the old one.

    `?ref=` is the signed reference the control carries. 400 if it is not one;
    when Convex cannot answer, the control again with an error, to retry.
    """
    try:
        ref = LiveRef.load(current.request().args.get("ref", ""))
    except LiveReferenceError as error:
        abort(400, str(error))
    if ref.kind != PAGE or _opts(ref).get("endCursor") is not None:
        abort(400, "The reference is not a load-more control's")
    outcome = _run([ref], None)[0]
    if outcome.error is not None:
        current.app().logger.warning("Next page of %s not loaded: %s", ref.name, outcome.error)
        response = Response(
            _control_for(ref, error=True), status=status_for(outcome.error), mimetype="text/html"
        )
        response.headers["X-Convex-Action"] = "form"
        return response
    pages = settle([Page(ref, outcome)])
    return Response(_render_pages(pages) + _control(pages), mimetype="text/html")


def _render_page(ref: LiveRef, outcome: Outcome, shown: str, element_id: str, oob: bool) -> Markup:
    """A page fragment refreshed by a poll, push or action: split when it grew too large."""
    pages = settle([Page(ref, outcome)])
    if not oob:
        return _render_pages(pages)
    # Every page but the last goes in before the fragment; the last takes its place.
    *before, last = pages
    rendered = _page_fragment(last, element_id, oob=True)
    if before:
        inserted = _render_pages(before)
        rendered = (
            Markup('<div hx-swap-oob="beforebegin:#{}">{}</div>').format(element_id, inserted)
            + rendered
        )
    return rendered


register_kind(PAGE, _render_page)


def _render_pages(pages: Sequence[Page]) -> Markup:
    return Markup("").join(
        _page_fragment(page, new_element_id(page.ref), oob=False) for page in pages
    )


def _page_fragment(page: Page, element_id: str, *, oob: bool) -> Markup:
    pieces = None
    if page.result is not None:
        pieces = partial_pieces("convex/page.html", items=page.items, item_partial=page.ref.partial)
    ref = replace(page.ref, css_class=with_classes("convex-page", page.ref.css_class))
    return render_fragment(
        ref, page.outcome, outcome_hash(page.outcome), element_id, oob=oob, pieces=pieces
    )


def _control(pages: Sequence[Page], next_url: str | None = None) -> Markup:
    """The load-more control after `pages`: its reference asks for the page after the last."""
    last = pages[-1]
    status = status_of(pages)
    if status != "CanLoadMore" or last.result is None:
        return _control_for(last.ref, status=status)
    size = last.ref.options.get("size") or last.ref.options.get("initial")
    opts = {"numItems": size, "cursor": last.result["continueCursor"]}
    next_ref = replace(last.ref, args={**last.ref.args, _OPTS: opts})
    return _control_for(next_ref, status=status, next_url=next_url)


def _control_for(
    ref: LiveRef,
    *,
    status: Status = "CanLoadMore",
    next_url: str | None = None,
    error: bool = False,
) -> Markup:
    """convex/more.html: a load-more button for `ref` while there is more, else the status."""
    return Markup(  # noqa: S704 - the output of an autoescaped template
        render_template(
            "convex/more.html",
            status=status,
            more_ref=ref.sign() if status == "CanLoadMore" else None,
            infinite=bool(ref.options.get("infinite")) and not error,
            next_url=next_url,
            error=error,
        )
    )


def _run(refs: Sequence[LiveRef], token: str | None) -> list[Outcome]:
    """Run page queries in one batch."""
    preloads = [preload_call(_call(ref), token) for ref in refs]
    return [preloaded.outcome for preloaded in preloads]


def _call(ref: LiveRef) -> Call:
    return ref.call(get_state().url)


def _opts(ref: LiveRef) -> dict[str, JsonValue]:
    opts = ref.args.get(_OPTS)
    return opts if isinstance(opts, dict) else {}


def _with_opts(ref: LiveRef, **changes: JsonValue) -> LiveRef:
    return replace(ref, args={**ref.args, _OPTS: {**_opts(ref), **changes}})


def _list_digest(name: str, key: str) -> str:
    return blake2b(f"{name}\0{key}".encode(), digest_size=6).hexdigest()


def _base_key(ref: LiveRef) -> str:
    return args_key({key: value for key, value in ref.args.items() if key != _OPTS})


def _read_trail(call: Call) -> list[str]:
    """The start cursors of the pages before and including the one `?cursor=` asks for."""
    signed = current.request().args.get("cursor")
    if not signed:
        return []
    try:
        digest, trail = serializer(CURSOR_SALT).loads(signed)
    except (BadData, ValueError, TypeError):
        abort(400, "The cursor parameter is not a page link of this site")
    if digest != _list_digest(call.path, call.args_key) or not (
        isinstance(trail, list) and trail and all(isinstance(c, str) for c in trail)
    ):
        abort(400, f"The cursor parameter is not a page link of the list {call.path}")
    return trail[-_MAX_TRAIL:]


def _page_url(ref: LiveRef, trail: list[str]) -> str:
    request = current.request()
    params = [(key, value) for key, value in request.args.items(multi=True) if key != "cursor"]
    if trail:
        digest = _list_digest(ref.name, _base_key(ref))
        params.append(("cursor", serializer(CURSOR_SALT).dumps([digest, trail])))
    query = urlencode(params)
    return f"{request.path}?{query}" if query else request.path


blueprint.add_app_template_global(paginated_list, "convex_paginated")
