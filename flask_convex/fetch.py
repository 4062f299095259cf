"""`fetch_query`, `fetch_mutation`, `fetch_action`: the seed's server-side calls for Flask."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from . import current
from .client import Call, Kind, Outcome, check_deployment_url
from .context import MemoKey, RequestState, request_state
from .errors import ConvexAuthError
from .functions import (
    CallArgs,
    FunctionRef,
    FunctionReference,
    NoArgs,
    ReturnT,
    TypedCall,
    function_name,
)
from .state import can_refresh, get_state
from .values import encode_args

T = TypeVar("T")


def prepare(ref: FunctionRef, args: Mapping[str, Any] | None, url: str | None) -> Call:
    """Check and encode a call before anything is sent; bad input raises here."""
    path = function_name(ref)
    encoded, key = encode_args(args)
    if url is None:
        url = get_state().url
    else:
        url = check_deployment_url(url, skip_check=current.app().config["CONVEX_SKIP_URL_CHECK"])
    return Call(url, path, encoded, key)


def resolve_token(explicit: str | None, state: RequestState | None = None) -> str | None:
    """The token for a call: `token=` if given, else the app's loader (once per request).

    `state` is the request's, if the caller has it at hand.
    """
    if explicit is not None:
        return explicit or None
    if state is None:
        state = request_state()
    if state.token_loaded:
        # Set only after the token: a page asks for it from every call and the head.
        return state.token
    with state.lock:
        if not state.token_loaded:
            loader = get_state().token_loader()
            state.token = loader() if loader else None
            state.token_loaded = True
        return state.token


def with_token(
    explicit: str | None, run: Callable[[str | None], T], state: RequestState | None = None
) -> T:
    """Run with the request's (`state`'s) token; if Convex rejects a loaded token, reload it
    once and retry."""
    token = resolve_token(explicit, state)
    try:
        return run(token)
    except ConvexAuthError:
        loader = get_state().token_loader()
        if explicit is not None or token is None or loader is None or not can_refresh(loader):
            raise
        fresh = loader(force_refresh=True)
        (state if state is not None else request_state()).token = fresh
        if fresh == token:
            raise
        return run(fresh)


def timed(label: str, run: Callable[[], T], state: RequestState | None = None) -> T:
    """Run a call and record its duration for the Server-Timing header of the request (`state`)."""
    start = time.perf_counter()
    try:
        return run()
    finally:
        (state if state is not None else request_state()).timings.append(
            (label, (time.perf_counter() - start) * 1000)
        )


@overload
def fetch_query(
    ref: TypedCall[CallArgs, ReturnT], *args: CallArgs.args, **kwargs: CallArgs.kwargs
) -> ReturnT: ...
@overload
def fetch_query(
    ref: FunctionReference[NoArgs, ReturnT],
    *,
    token: str | None = None,
    url: str | None = None,
) -> ReturnT: ...
@overload
def fetch_query(
    ref: str,
    args: Mapping[str, Any] | None = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Any: ...
def fetch_query(  # type: ignore[misc]  # the typed overload's rest of call is (args, token=, url=)
    ref: FunctionRef,
    args: Any = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Any:
    """Run a query and return its value; the same query twice in a request reaches Convex once."""
    call = prepare(ref, args, url)
    state = request_state()
    state.read_data = True

    def run(token: str | None) -> Outcome:
        key: MemoKey = (call, token)
        outcome = state.memo.get(key)
        if outcome is None:
            outcome = _send(call, "query", token)
            state.memo[key] = outcome
        return outcome

    return with_token(token, run, state).unwrap()


@overload
def fetch_mutation(
    ref: TypedCall[CallArgs, ReturnT], *args: CallArgs.args, **kwargs: CallArgs.kwargs
) -> ReturnT: ...
@overload
def fetch_mutation(
    ref: FunctionReference[NoArgs, ReturnT],
    *,
    token: str | None = None,
    url: str | None = None,
) -> ReturnT: ...
@overload
def fetch_mutation(
    ref: str,
    args: Mapping[str, Any] | None = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Any: ...
def fetch_mutation(  # type: ignore[misc]  # the typed overload's rest of call is (args, token=, url=)
    ref: FunctionRef,
    args: Any = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Any:
    """Run a mutation and return its value; it is never retried."""
    return _write(prepare(ref, args, url), "mutation", token)


@overload
def fetch_action(
    ref: TypedCall[CallArgs, ReturnT], *args: CallArgs.args, **kwargs: CallArgs.kwargs
) -> ReturnT: ...
@overload
def fetch_action(
    ref: FunctionReference[NoArgs, ReturnT],
    *,
    token: str | None = None,
    url: str | None = None,
) -> ReturnT: ...
@overload
def fetch_action(
    ref: str,
    args: Mapping[str, Any] | None = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Any: ...
def fetch_action(  # type: ignore[misc]  # the typed overload's rest of call is (args, token=, url=)
    ref: FunctionRef,
    args: Any = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Any:
    """Run an action and return its value; it is never retried."""
    return _write(prepare(ref, args, url), "action", token)


@overload
async def afetch_query(
    ref: TypedCall[CallArgs, ReturnT], *args: CallArgs.args, **kwargs: CallArgs.kwargs
) -> ReturnT: ...
@overload
async def afetch_query(
    ref: FunctionReference[NoArgs, ReturnT],
    *,
    token: str | None = None,
    url: str | None = None,
) -> ReturnT: ...
@overload
async def afetch_query(
    ref: str,
    args: Mapping[str, Any] | None = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Any: ...
async def afetch_query(  # type: ignore[misc]  # as fetch_query
    ref: FunctionRef,
    args: Any = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Any:
    """`fetch_query` for async views: runs on a worker thread, the event loop stays free."""
    return await asyncio.to_thread(_untyped(fetch_query), ref, args, token=token, url=url)


@overload
async def afetch_mutation(
    ref: TypedCall[CallArgs, ReturnT], *args: CallArgs.args, **kwargs: CallArgs.kwargs
) -> ReturnT: ...
@overload
async def afetch_mutation(
    ref: FunctionReference[NoArgs, ReturnT],
    *,
    token: str | None = None,
    url: str | None = None,
) -> ReturnT: ...
@overload
async def afetch_mutation(
    ref: str,
    args: Mapping[str, Any] | None = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Any: ...
async def afetch_mutation(  # type: ignore[misc]  # as fetch_mutation
    ref: FunctionRef,
    args: Any = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Any:
    """`fetch_mutation` for async views."""
    return await asyncio.to_thread(_untyped(fetch_mutation), ref, args, token=token, url=url)


@overload
async def afetch_action(
    ref: TypedCall[CallArgs, ReturnT], *args: CallArgs.args, **kwargs: CallArgs.kwargs
) -> ReturnT: ...
@overload
async def afetch_action(
    ref: FunctionReference[NoArgs, ReturnT],
    *,
    token: str | None = None,
    url: str | None = None,
) -> ReturnT: ...
@overload
async def afetch_action(
    ref: str,
    args: Mapping[str, Any] | None = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Any: ...
async def afetch_action(  # type: ignore[misc]  # as fetch_action
    ref: FunctionRef,
    args: Any = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Any:
    """`fetch_action` for async views."""
    return await asyncio.to_thread(_untyped(fetch_action), ref, args, token=token, url=url)


def _untyped(function: Callable[..., Any]) -> Callable[..., Any]:
    """An overloaded `fetch_*` as a plain callable, for `asyncio.to_thread`."""
    return function


def _write(call: Call, kind: Kind, token: str | None) -> Any:
    state = request_state()
    try:
        outcome = with_token(token, lambda token: _send(call, kind, token))
    finally:
        # Whatever this changed makes every remembered read stale.
        state.memo.clear()
        get_state().recent.forget()
    state.wrote = state.wrote or outcome.error is None
    return outcome.unwrap()


def _send(call: Call, kind: Kind, token: str | None) -> Outcome:
    transport = get_state().transport
    return timed(call.path, lambda: transport.call(call, kind, token))
