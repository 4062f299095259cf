"""Converts between Python values and Convex-encoded JSON, with errors that name the key path.

Encoding and decoding are the official `convex.values`; this module only adds the
argument checks. Decoded values: Convex float64 numbers are `float`, int64 are
`convex.ConvexInt64` (the integer is `.value`), bytes are `bytes`, and NaN, ±inf
and -0.0 are `float`. To send an int64, wrap it: `ConvexInt64(n)`; a plain `int`
is sent as a float64 and must lie within ±2**53.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from convex.values import JsonValue, convex_to_json, json_to_convex

from .errors import ConvexValueError

__all__ = ["JsonValue", "args_key", "decode", "encode_args"]

decode = json_to_convex


def encode_args(args: Mapping[str, Any] | None) -> dict[str, JsonValue]:
    """Encode function arguments, refusing anything Convex cannot hold before it is sent."""
    if args is None:
        return {}
    if not isinstance(args, Mapping):
        raise ConvexValueError(
            f"args must be a dict of argument names to values, not {type(args).__name__}"
        )
    try:
        encoded = convex_to_json(dict(args))
    except (TypeError, ValueError) as error:
        raise ConvexValueError(_explain(args, "args") or str(error)) from error
    assert isinstance(encoded, dict)
    return encoded


def args_key(encoded: JsonValue) -> str:
    """A canonical string for encoded arguments, equal for equal values."""
    return json.dumps(encoded, sort_keys=True, separators=(",", ":"))


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
    try:
        convex_to_json(value)
    except (TypeError, ValueError) as error:
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{path}: {value} is outside ±2**53; wrap it as ConvexInt64({value})"
        if isinstance(value, dict):
            return f"{path}: {error}"
        return f"{path}: {type(value).__name__} is not a Convex value"
    return None
