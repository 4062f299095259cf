"""Converts between Python values and Convex-encoded JSON, with errors that name the key path.

Encoding and decoding are the official `convex.values`; this module adds the
argument checks and makes answers safe to read. Decoded values: Convex float64
numbers are `float`, int64 are `convex.ConvexInt64` (the integer is `.value`),
bytes are `bytes`, and NaN, ±inf and -0.0 are `float`. To send an int64, wrap it:
`ConvexInt64(n)`; a plain `int` is sent as a float64 and must lie within ±2**53.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

from convex.values import JsonValue, convex_to_json, json_to_convex

from .errors import ConvexValueError

__all__ = [
    "JsonValue",
    "args_key",
    "decode",
    "encode_args",
    "may_hold_lone_surrogates",
    "parse_json",
]

_SURROGATE: Final = re.compile("[\ud800-\udfff]")
# Made once: `json.dumps` with options builds an encoder on every call.
_TEXT: Final = json.JSONEncoder(ensure_ascii=False)
_CANONICAL: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def encode_args(args: Mapping[str, Any] | None) -> tuple[dict[str, JsonValue], str]:
    """Encode function arguments, refusing anything Convex cannot hold before it is sent;
    with their canonical text (`args_key`)."""
    if args is None:
        return {}, "{}"
    if not isinstance(args, Mapping):
        raise ConvexValueError(
            f"args must be a dict of argument names to values, not {type(args).__name__}"
        )
    try:
        encoded = convex_to_json(dict(args))
        key = args_key(encoded)
        # Convex strings are Unicode text: a lone surrogate such as "\ud800" is not,
        # and every page showing it would fail to encode. The ASCII key escapes every
        # surrogate as "\udXXX": without one, there is none to look for.
        if "\\ud" in key:
            _TEXT.encode(encoded).encode()  # raises UnicodeEncodeError on a lone one
    except RecursionError:
        raise ConvexValueError("args are nested too deeply to send") from None
    except (TypeError, ValueError) as error:
        raise ConvexValueError(_explain(args, "args") or str(error)) from error
    assert isinstance(encoded, dict)
    return encoded, key


def decode(raw: JsonValue) -> Any:
    """A Convex-encoded JSON value as Python values; ValueError if it is not one."""
    try:
        return json_to_convex(raw)
    except RecursionError:
        raise ValueError("the value is nested too deeply") from None
    except (struct.error, TypeError, AttributeError) as error:
        # The official decoder lets these out for malformed $integer/$float/$bytes.
        raise ValueError(f"not a Convex-encoded value: {error}") from error


def parse_json(content: bytes) -> Any:
    """JSON text from Convex, lone surrogates replaced by U+FFFD; ValueError if not JSON.

    JSON may escape a lone surrogate ("\\ud800"), which Python reads into a str
    that cannot be encoded again: rendered into a page, it fails the whole page.
    """
    try:
        value = json.loads(content)
        if may_hold_lone_surrogates(content):
            value = _valid_text(value)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    return value


def may_hold_lone_surrogates(content: bytes) -> bool:
    """Whether JSON text might read into a lone surrogate; False means it cannot."""
    # Only from \\u escapes, or from the CESU-8 bytes ED A0..ED BF that JSON decoding lets by.
    return b"\\u" in content or b"\xed" in content


def args_key(encoded: JsonValue) -> str:
    """A canonical string for encoded arguments, equal for equal values."""
    return _CANONICAL.encode(encoded)


def _valid_text(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_valid_text(item) for item in value]
    if isinstance(value, dict):
        return {_valid_text(key): _valid_text(item) for key, item in value.items()}
    return value


def _explain(value: Any, path: str) -> str | None:
    """Find the first part of `value` that cannot be encoded and say why, with its path."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}: object keys must be str, found {key!r}"
            found = _leaf_error({key: None}, f"{path}[{key!r}]") or _explain(
                item, f"{path}[{key!r}]"
            )
            if found:
                return found
        return None
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for index, item in enumerate(value):
            found = _explain(item, f"{path}[{index}]")
            if found:
                return found
        return None
    return _leaf_error(value, path)


def _leaf_error(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        lone = _SURROGATE.search(value)
        if lone:
            return (
                f"{path}: the string has a lone surrogate {lone.group()!r} at index "
                f"{lone.start()}; Convex strings must be valid Unicode"
            )
        return None
    try:
        convex_to_json(value)
    except (TypeError, ValueError) as error:
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{path}: {value} is outside ±2**53; wrap it as ConvexInt64({value})"
        if isinstance(value, dict):
            return f"{path}: {error}"
        return f"{path}: {type(value).__name__} is not a Convex value"
    return None
