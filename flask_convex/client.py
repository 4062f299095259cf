"""Calls a Convex deployment's HTTP API over pooled keep-alive connections; knows no Flask."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from hashlib import blake2b
from http import HTTPStatus
from json.encoder import encode_basestring_ascii
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import httpcore
import httpx

from .connections import ConnectionPool, with_headers
from .errors import (
    ConvexAuthError,
    ConvexConnectionError,
    ConvexError,
    ConvexFlaskError,
    ConvexFunctionError,
    ConvexOutcomeUnknownError,
    ConvexRequestError,
)
from .values import JsonValue, decode, may_hold_lone_surrogates, parse_json

Kind = Literal["query", "mutation", "action"]

_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures that leave before the request does: a write can safely be tried again."""

function_logger: Final = logging.getLogger("flask_convex.functions")
request_logger: Final = logging.getLogger("flask_convex.requests")
_LOG_LEVELS: Final = {
    "[LOG]": logging.INFO,
    "[INFO]": logging.INFO,
    "[WARN]": logging.WARNING,
    "[ERROR]": logging.ERROR,
    "[DEBUG]": logging.DEBUG,
}


@lru_cache(maxsize=64)
def check_deployment_url(url: str, *, skip_check: bool = False, setting: str = "url") -> str:
    """Return the deployment URL without a trailing slash, or raise ValueError naming `setting`.

    Applies the official client's checks: http(s), parseable, and not the
    `.convex.site` origin that serves HTTP actions.
    """
    if not isinstance(url, str) or not url:
        raise ValueError(
            f"{setting} is not set: give the Convex deployment URL, e.g. https://name.convex.cloud"
        )
    if not skip_check:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - parsing the port is what rejects "http://host:abc"
        except ValueError as error:
            raise ValueError(f"{setting} {url!r} is not a valid URL: {error}") from error
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{setting} {url!r} must be an absolute http:// or https:// URL")
        if parts.hostname.endswith(".convex.site"):
            raise ValueError(
                f"{setting} {url!r} ends with .convex.site, the HTTP actions origin; "
                "use the deployment URL ending with .convex.cloud"
            )
    return url.rstrip("/")


@dataclass(frozen=True, slots=True)
class Call:
    """A function call checked and encoded, ready to send; equal calls compare equal."""

    url: str
    path: str
    args: dict[str, JsonValue] = field(compare=False)
    args_key: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """One function's result in a batch: its decoded value, or the error it raised."""

    value: Any = None
    error: ConvexFlaskError | None = None
    encoded: JsonValue | Reread = None
    """The value as Convex-encoded JSON, or where to read it again (see `raw`)."""
    ts: int | None = None
    """The Convex timestamp of the snapshot a query batch read, when Convex says it."""
    origin: tuple[bytes, int] | None = field(default=None, compare=False)
    """A fingerprint of the answer the value was read from, and its place in that answer:
    values of equal origins are equal, so what is derived from one can serve the other."""

    @property
    def raw(self) -> JsonValue:
        """The value as Convex-encoded JSON, as the answer carried it; never `value` itself."""
        return self.encoded.read() if isinstance(self.encoded, Reread) else self.encoded

    def unwrap(self) -> Any:
        """The value, or raise the error."""
        if self.error is not None:
            raise self.error
        return self.value


class EncodedAnswer:
    """A plain answer (see `_plain_answer`), parsed again as Convex-encoded JSON on first need.

    A value holding only plain JSON decodes to an equal copy of its encoded form, so
    the answer is parsed once for the values, and parsed again, once for all of its
    results, only for what needs the encoded form (a live fragment's first digest,
    `to_json`), which a changed `value` must not change. Convex nests values at
    most 64 deep, so the later parse cannot run out of stack where the first did not.
    """

    __slots__ = ("_answer", "_parsed")

    def __init__(self, answer: bytes) -> None:
        self._answer = answer
        self._parsed: Any = None

    def result(self, index: int | None) -> Any:
        """The answer's result `index` of a batch, or the whole answer of a single call."""
        if self._parsed is None:
            self._parsed = parse_json(self._answer)
        return self._parsed if index is None else self._parsed["results"][index]


@dataclass(frozen=True, slots=True)
class Reread:
    """Where a plain value's encoded form is: its answer, and its place in a batch (or None)."""

    answer: EncodedAnswer
    index: int | None

    def read(self) -> JsonValue:
        value: JsonValue = self.answer.result(self.index).get("value")
        return value


class Transport:
    """Sends function calls to Convex deployments and turns answers into values or errors."""

    def __init__(self, http: ConnectionPool, client_id: str) -> None:
        self.http = http
        self._headers = [
            (b"Content-Type", b"application/json"),
            (b"Convex-Client", client_id.encode()),
        ]

    def call(self, call: Call, kind: Kind, token: str | None) -> Outcome:
        """Run one query, mutation or action; request failures raise, function errors return.

        A mutation or action whose answer is lost after it was sent raises
        ConvexOutcomeUnknownError; it is never retried.
        """
        content = _request(call).encode()
        answer, encoded, fingerprint = self._post(
            call.url, kind, content, token, write=kind != "query"
        )
        source = None if encoded is None else Reread(encoded, None)
        return _outcome(answer, source, call.path, (fingerprint, 0), None)

    def query_batch(self, calls: Sequence[Call], token: str | None) -> list[Outcome]:
        """Run several queries of one deployment at one timestamp in one request; each
        fails on its own. ValueError if `calls` is empty or goes to several deployments.

        Each outcome carries the batch's timestamp (`ts`) when the deployment answers one.
        """
        urls = {call.url for call in calls}
        if len(urls) != 1:
            raise ValueError(f"a batch holds calls to one deployment, not to {sorted(urls)}")
        content = ('{"queries":[' + ",".join(map(_request, calls)) + "]}").encode()
        answer, encoded, fingerprint = self._post(
            calls[0].url, "query_batch", content, token, write=False
        )
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(calls):
            raise ConvexRequestError(200, "BadResponse", "query_batch answered without results")
        ts = decode_ts(answer.get("ts"))
        return [
            _outcome(
                result,
                None if encoded is None else Reread(encoded, index),
                call.path,
                (fingerprint, index),
                ts,
            )
            for index, (result, call) in enumerate(zip(results, calls, strict=True))
        ]

    def _post(
        self, url: str, kind: str, content: bytes, token: str | None, *, write: bool
    ) -> tuple[Any, EncodedAnswer | None, bytes]:
        """The answer parsed, where to read its encoded form if it is plain, and a fingerprint.

        The values of a plain answer (see `_plain_answer`) are parsed as Convex
        values already; otherwise they are Convex-encoded JSON, and the second
        item is None.
        """
        headers = self._headers
        if token:
            headers = [*headers, (b"Authorization", f"Bearer {token}".encode())]
        request = with_headers(
            httpcore.Request(b"POST", _api_url(url, kind), content=content), list(headers)
        )
        try:
            response = self._send(request, retry=not write)
        except httpx.HTTPError as error:
            raise _connection_error(f"{url}/api/{kind}", error, write=write) from error
        # As the pool reads a request's: `read()` checks the stream against typing's ABCs twice.
        answer = b"".join(response.stream)  # type: ignore[arg-type]
        request_logger.debug("POST %s/api/%s: %d", url, kind, response.status)
        if response.status != 200:
            raise _request_error(response.status, answer)
        fingerprint = blake2b(answer, digest_size=16).digest()
        parsed = _plain_answer(answer)
        if parsed is not None:
            return parsed, EncodedAnswer(answer), fingerprint
        try:
            return parse_json(answer), None, fingerprint
        except ValueError as error:
            if write:
                message = f"{url}/api/{kind} answered unreadable JSON: the call may have run"
                raise ConvexOutcomeUnknownError(message) from error
            raise ConvexRequestError(
                200, "BadResponse", f"the answer is not JSON: {error}"
            ) from error

    def _send(self, request: httpcore.Request, *, retry: bool) -> httpcore.Response:
        try:
            return self.http.handle_request(request)
        except (httpx.ConnectError, httpx.RemoteProtocolError):
            if not retry:
                raise
            return self._send(request, retry=False)


def _connection_error(endpoint: str, error: httpx.HTTPError, *, write: bool) -> ConvexFlaskError:
    timed_out = isinstance(error, httpx.TimeoutException)
    if write and not isinstance(error, _NOT_SENT):
        what = "did not answer in time" if timed_out else f"lost the connection ({error})"
        return ConvexOutcomeUnknownError(
            f"{endpoint} {what} after the call was sent: it may have run; check before retrying"
        )
    if timed_out:
        return ConvexConnectionError(f"Convex did not answer in time: {endpoint}")
    return ConvexConnectionError(f"Cannot reach {endpoint}: {error}")


def decode_ts(encoded: object) -> int | None:
    """A Convex timestamp (base64 of 8 little-endian bytes) as an int, None if absent or bad."""
    if not isinstance(encoded, str):
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return None
    return int.from_bytes(raw, "little") if len(raw) == 8 else None


@lru_cache(maxsize=256)
def _api_url(url: str, kind: str) -> httpcore.URL:
    return httpcore.URL(f"{url}/api/{kind}")


def _plain_answer(answer: bytes) -> dict[str, Any] | None:
    """`answer` parsed, if it is an object whose values are plain JSON ones, else None.

    Convex numbers are floats and its field names were checked when stored, so
    without `$`-keyed objects ($integer, $bytes, $float) or integers, decoding a
    value would return an equal copy. A possible lone surrogate takes the
    decoding path, whose strings are made safe.
    """
    if b'"$' in answer or may_hold_lone_surrogates(answer):
        return None
    try:
        parsed = _PLAIN.decode(answer.decode())
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _no_int(text: str) -> float:
    raise ValueError(f"{text} is an integer, not a Convex number")


def _request(call: Call) -> str:
    """The JSON of one function call in a request body."""
    # The canonical text of the arguments is their JSON already: not encoded again.
    path = encode_basestring_ascii(call.path)
    return f'{{"path":{path},"args":{call.args_key},"format":"convex_encoded_json"}}'


# Made once: `json.loads` with options builds a decoder on every call.
_PLAIN: Final = json.JSONDecoder(parse_int=_no_int)


def _request_error(status: int, answer: bytes) -> ConvexRequestError:
    try:
        body = parse_json(answer)
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        code, message = _status_phrase(status), answer.decode("utf-8", "replace")[:500]
    kind = ConvexAuthError if status == 401 else ConvexRequestError
    return kind(status, code, message)


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTPError"


def _outcome(
    answer: Any, plain: Reread | None, path: str, origin: tuple[bytes, int], ts: int | None
) -> Outcome:
    """`answer`'s outcome, read from `origin` at `ts`; with `plain`, its values are decoded
    already and `plain` reads their encoded form."""
    if not isinstance(answer, dict):
        return Outcome(error=ConvexRequestError(200, "BadResponse", "not a JSON object"), ts=ts)
    log_lines = answer.get("logLines") or []
    _log_function_lines(path, log_lines)
    status = answer.get("status")
    try:
        if status == "success":
            raw = answer.get("value")
            if plain is not None:
                return Outcome(value=raw, encoded=plain, ts=ts, origin=origin)
            return Outcome(value=decode(raw), encoded=raw, ts=ts, origin=origin)
        if status == "error":
            message = str(answer.get("errorMessage", ""))
            if "errorData" in answer:
                data = answer["errorData"]
                error = ConvexError(message, data if plain else decode(data), log_lines)
                return Outcome(error=error, ts=ts)
            return Outcome(error=ConvexFunctionError(message, log_lines), ts=ts)
    except ValueError as error:
        # One bad value fails its own call, not the other queries of a batch.
        return Outcome(error=ConvexRequestError(200, "BadResponse", f"{path}: {error}"), ts=ts)
    return Outcome(
        error=ConvexRequestError(200, "BadResponse", f"unknown status {status!r}"), ts=ts
    )


def _log_function_lines(path: str, lines: list[str]) -> None:
    for line in lines:
        prefix, _, text = line.partition(" ")
        level = _LOG_LEVELS.get(prefix)
        if level is None:
            level, text = logging.INFO, line
        function_logger.log(level, "%s: %s", path, text)
