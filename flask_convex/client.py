"""Calls a Convex deployment's HTTP API over one pooled httpx client; knows nothing of Flask."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import httpx

from .errors import (
    ConvexAuthError,
    ConvexConnectionError,
    ConvexError,
    ConvexFlaskError,
    ConvexFunctionError,
    ConvexRequestError,
)
from .values import JsonValue, decode

Kind = Literal["query", "mutation", "action"]

function_logger: Final = logging.getLogger("flask_convex.functions")
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
    raw: JsonValue = None
    ts: int | None = None
    """The Convex timestamp of the snapshot a query batch read, when Convex says it."""

    def unwrap(self) -> Any:
        """The value, or raise the error."""
        if self.error is not None:
            raise self.error
        return self.value


class Transport:
    """Sends function calls to Convex deployments and turns answers into values or errors."""

    def __init__(self, http: httpx.Client, client_id: str) -> None:
        self.http = http
        self._headers = {"Content-Type": "application/json", "Convex-Client": client_id}

    def call(
        self, url: str, kind: Kind, path: str, args: dict[str, JsonValue], token: str | None
    ) -> Outcome:
        """Run one query, mutation or action; request failures raise, function errors return."""
        body = {"path": path, "args": args, "format": "convex_encoded_json"}
        answer = self._post(f"{url}/api/{kind}", body, token, retry=kind == "query")
        return _outcome(answer, path)

    def query_batch(
        self,
        url: str,
        queries: Sequence[tuple[str, dict[str, JsonValue]]],
        token: str | None,
    ) -> list[Outcome]:
        """Run several queries at one timestamp in one request; each fails on its own.

        Each outcome carries the batch's timestamp (`ts`) when the deployment answers one.
        """
        body = {
            "queries": [
                {"path": path, "args": args, "format": "convex_encoded_json"}
                for path, args in queries
            ]
        }
        answer = self._post(f"{url}/api/query_batch", body, token, retry=True)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(queries):
            raise ConvexRequestError(200, "BadResponse", "query_batch answered without results")
        ts = decode_ts(answer.get("ts"))
        return [
            replace(_outcome(result, path), ts=ts)
            for result, (path, _) in zip(results, queries, strict=True)
        ]

    def _post(self, endpoint: str, body: object, token: str | None, *, retry: bool) -> Any:
        headers = self._headers
        if token:
            headers = {**headers, "Authorization": f"Bearer {token}"}
        content = json.dumps(body, separators=(",", ":"), allow_nan=False)
        try:
            response = self.http.post(endpoint, content=content, headers=headers)
        except (httpx.ConnectError, httpx.RemoteProtocolError) as error:
            if not retry:
                raise ConvexConnectionError(f"Cannot reach {endpoint}: {error}") from error
            return self._post(endpoint, body, token, retry=False)
        except httpx.TimeoutException as error:
            raise ConvexConnectionError(f"Convex did not answer in time: {endpoint}") from error
        except httpx.HTTPError as error:
            raise ConvexConnectionError(f"Cannot reach {endpoint}: {error}") from error
        if response.status_code != 200:
            raise _request_error(response)
        try:
            return response.json()
        except ValueError as error:
            raise ConvexRequestError(200, "BadResponse", "the answer is not JSON") from error


def decode_ts(encoded: object) -> int | None:
    """A Convex timestamp (base64 of 8 little-endian bytes) as an int, None if absent or bad."""
    if not isinstance(encoded, str):
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return None
    return int.from_bytes(raw, "little") if len(raw) == 8 else None


def _request_error(response: httpx.Response) -> ConvexRequestError:
    try:
        body = response.json()
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        code, message = response.reason_phrase or "HTTPError", response.text[:500]
    kind = ConvexAuthError if response.status_code == 401 else ConvexRequestError
    return kind(response.status_code, code, message)


def _outcome(answer: Any, path: str) -> Outcome:
    if not isinstance(answer, dict):
        return Outcome(error=ConvexRequestError(200, "BadResponse", "not a JSON object"))
    log_lines = answer.get("logLines") or []
    _log_function_lines(path, log_lines)
    status = answer.get("status")
    try:
        if status == "success":
            raw = answer.get("value")
            return Outcome(value=decode(raw), raw=raw)
        if status == "error":
            message = str(answer.get("errorMessage", ""))
            if "errorData" in answer:
                return Outcome(error=ConvexError(message, decode(answer["errorData"]), log_lines))
            return Outcome(error=ConvexFunctionError(message, log_lines))
    except ValueError as error:
        # One bad value fails its own call, not the other queries of a batch.
        return Outcome(error=ConvexRequestError(200, "BadResponse", f"{path}: {error}"))
    return Outcome(error=ConvexRequestError(200, "BadResponse", f"unknown status {status!r}"))


def _log_function_lines(path: str, lines: list[str]) -> None:
    for line in lines:
        prefix, _, text = line.partition(" ")
        level = _LOG_LEVELS.get(prefix)
        if level is None:
            level, text = logging.INFO, line
        function_logger.log(level, "%s: %s", path, text)
