"""`preload_query`: every preload of a request resolves in one consistent `query_batch` call."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Generic, overload

from .client import Call, Outcome
from .context import PendingRead, RequestState, request_state
from .errors import ConvexFlaskError
from .fetch import prepare, resolve_token, timed, with_token
from .functions import CallArgs, FunctionRef, FunctionReference, NoArgs, ReturnT, TypedCall
from .state import get_state
from .values import JsonValue


class Preloaded(Generic[ReturnT]):
    """A query preloaded for the page, as `Preloaded` from `convex/nextjs`.

    Reading it (`.value`, `preloaded_query_result`, `to_json`) resolves every
    preload of the request that is still pending, together, at one timestamp.
    """

    __slots__ = ("_outcome", "_state", "call", "token")

    def __init__(self, call: Call, token: str | None, state: RequestState) -> None:
        self.call = call
        self.token = token
        self._state = state
        self._outcome: Outcome | None = None

    @property
    def name(self) -> str:
        """The function path, e.g. "tasks:list"."""
        return self.call.path

    @property
    def args(self) -> dict[str, JsonValue]:
        """The arguments in Convex-encoded JSON."""
        return self.call.args

    @property
    def outcome(self) -> Outcome:
        """The resolved result or error, resolving the pending batch if needed."""
        if self._outcome is None:
            resolve_pending(self._state)
        assert self._outcome is not None
        return self._outcome

    @property
    def value(self) -> ReturnT:
        """The query's value; raises the query's error if it failed."""
        value: ReturnT = self.outcome.unwrap()
        return value

    def settle(self, outcome: Outcome) -> None:
        """Take the outcome the request's batch gave this preload."""
        self._outcome = outcome

    def to_json(self) -> dict[str, JsonValue]:
        """The payload JS `usePreloadedQuery` consumes: `_name`, `_argsJSON`, `_valueJSON`."""
        outcome = self.outcome
        outcome.unwrap()
        return {"_name": self.name, "_argsJSON": self.args, "_valueJSON": outcome.raw}

    def __repr__(self) -> str:
        state = "pending" if self._outcome is None else "resolved"
        return f"<Preloaded {self.name} {state}>"


@overload
def preload_query(
    ref: TypedCall[CallArgs, ReturnT], *args: CallArgs.args, **kwargs: CallArgs.kwargs
) -> Preloaded[ReturnT]: ...
@overload
def preload_query(
    ref: FunctionReference[NoArgs, ReturnT],
    *,
    token: str | None = None,
    url: str | None = None,
) -> Preloaded[ReturnT]: ...
@overload
def preload_query(
    ref: str,
    args: Mapping[str, Any] | None = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Preloaded[Any]: ...
def preload_query(  # type: ignore[misc]  # the typed overload's rest of call is (args, token=, url=)
    ref: FunctionRef,
    args: Any = None,
    *,
    token: str | None = None,
    url: str | None = None,
) -> Preloaded[Any]:
    """Preload a query for the page; nothing is sent until some preload is read."""
    return preload_call(prepare(ref, args, url), token)


def preload_call(call: Call, token: str | None = None) -> Preloaded[Any]:
    """`preload_query` for a call already checked and encoded by `fetch.prepare`."""
    state = request_state()
    state.read_data = True
    preloaded: Preloaded[Any] = Preloaded(call, token, state)
    with state.lock:
        remembered = state.memo.get((call, resolve_token(token, state)))
        if remembered is not None:
            preloaded.settle(remembered)
        else:
            state.pending.append(preloaded)
    return preloaded


def preloaded_query_result(preloaded: Preloaded[ReturnT]) -> ReturnT:
    """The value of a preloaded query, as `preloadedQueryResult`."""
    return preloaded.value


async def apreloaded_query_result(preloaded: Preloaded[ReturnT]) -> ReturnT:
    """`preloaded_query_result` for async views: the batch is sent from a worker thread."""
    return await asyncio.to_thread(preloaded_query_result, preloaded)


def resolve_pending(state: RequestState) -> None:
    """Send every pending preload: one `query_batch` per deployment and token, usually one."""
    with state.lock:
        pending, state.pending = state.pending, []
        groups: dict[tuple[str, str | None], list[PendingRead]] = {}
        for read in pending:
            groups.setdefault((read.call.url, read.token), []).append(read)
        for (_, token), members in groups.items():
            _resolve_group(state, token, members)


def _resolve_group(state: RequestState, token: str | None, members: list[PendingRead]) -> None:
    transport = get_state().transport
    calls = list(dict.fromkeys(read.call for read in members))
    label = "batch: " + ", ".join(call.path for call in calls)

    def run(token: str | None) -> tuple[str | None, list[Outcome]]:
        return token, timed(label, lambda: transport.query_batch(calls, token), state)

    try:
        used, outcomes = with_token(token, run, state)
    except ConvexFlaskError as error:
        for read in members:
            read.settle(Outcome(error=error))
        return
    by_call = dict(zip(calls, outcomes, strict=True))
    state.memo.update(((call, used), outcome) for call, outcome in by_call.items())
    for read in members:
        read.settle(by_call[read.call])
