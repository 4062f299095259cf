"""Argument encoding and value decoding: every Convex type, and bad input named by key path."""

from __future__ import annotations

import datetime
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flask_convex import ConvexInt64, ConvexValueError
from flask_convex.values import args_key, decode, encode_args


def round_trip(value: Any) -> Any:
    """Encode as an argument, send as JSON text, decode as a result."""
    wire = json.loads(json.dumps(encode_args({"v": value})[0], allow_nan=False))
    decoded = decode(wire)
    assert isinstance(decoded, dict)
    return decoded["v"]


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (ConvexInt64(0), {"$integer": "AAAAAAAAAAA="}),
        (ConvexInt64(1), {"$integer": "AQAAAAAAAAA="}),
        (ConvexInt64(-1), {"$integer": "//////////8="}),
        (ConvexInt64(2**63 - 1), {"$integer": "/////////38="}),
        (b"hello", {"$bytes": "aGVsbG8="}),
        (math.inf, {"$float": "AAAAAAAA8H8="}),
        (-math.inf, {"$float": "AAAAAAAA8P8="}),
        (-0.0, {"$float": "AAAAAAAAAIA="}),
        (math.nan, {"$float": "AAAAAAAA+H8="}),
    ],
)
def test_special_values_use_the_reference_encoding(value: Any, wire: Any) -> None:
    assert encode_args({"v": value})[0] == {"v": wire}


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        1.5,
        0.0,
        "text ✓",
        "",
        b"\x00\xff",
        ConvexInt64(-(2**63)),
        ConvexInt64(2**63 - 1),
        math.inf,
        -math.inf,
        [1.0, "a", None, [b"x", {"deep": [ConvexInt64(7)]}]],
        {"_id": "k57", "nested": {"list": [{"n": -math.inf}]}, "": "empty key"},
    ],
)
def test_values_round_trip(value: Any) -> None:
    assert round_trip(value) == value


def test_nan_round_trips() -> None:
    assert math.isnan(round_trip(math.nan))


def test_negative_zero_keeps_its_sign() -> None:
    decoded = round_trip(-0.0)
    assert decoded == 0.0
    assert math.copysign(1.0, decoded) == -1.0


def test_int64_comes_back_as_convex_int64() -> None:
    decoded = round_trip(ConvexInt64(2**62))
    assert isinstance(decoded, ConvexInt64)
    assert decoded.value == 2**62


def test_plain_ints_are_float64() -> None:
    assert encode_args({"n": 5, "big": 2**53})[0] == {"n": 5.0, "big": float(2**53)}
    assert isinstance(round_trip(5), float)


def test_tuples_are_arrays() -> None:
    assert round_trip((1.0, "a")) == [1.0, "a"]


def test_args_default_to_an_empty_object() -> None:
    assert encode_args(None) == ({}, "{}")


@pytest.mark.parametrize("args", [[1], "tasks", ({"a": 1},), 3])
def test_args_must_be_a_dict(args: Any) -> None:
    with pytest.raises(ConvexValueError, match="args must be a dict"):
        encode_args(args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"tags": {"a", "b"}}, "args['tags']: set is not a Convex value"),
        ({"when": datetime.datetime(2024, 1, 1)}, "args['when']: datetime is not a Convex value"),
        ({"n": 2**53 + 1}, f"args['n']: {2**53 + 1} is outside ±2**53; wrap it as ConvexInt64"),
        ({"n": -(2**53) - 1}, "args['n']: -9007199254740993 is outside ±2**53"),
        ({"$where": 1.0}, "args['$where']: Field name $where starts with a '$'"),
        ({"q": {"$gt": 1.0}}, "args['q']['$gt']: Field name $gt starts with a '$'"),
        ({"q": {1: "a"}}, "args['q']: object keys must be str, found 1"),
        ({2: "a"}, "args: object keys must be str, found 2"),
        ({"rows": [1.0, [{"at": object()}]]}, "args['rows'][1][0]['at']: object is not"),
        ({"text": "\ud800"}, "args['text']: the string has a lone surrogate '\\ud800' at index 0"),
        ({"t": ["ok", "a\udfffb"]}, "args['t'][1]: the string has a lone surrogate"),
        ({"k\ud800": "v"}, "args['k\\ud800']: Field name 'k\ud800' has invalid character"),
    ],
)
def test_bad_values_are_refused_naming_the_key_path(args: Any, message: str) -> None:
    with pytest.raises(ConvexValueError) as caught:
        encode_args(args)
    assert message in str(caught.value)


def test_args_key_is_equal_for_equal_arguments_in_any_order() -> None:
    first = encode_args({"a": 1.0, "b": [ConvexInt64(2)]})
    second = encode_args({"b": [ConvexInt64(2)], "a": 1.0})
    assert args_key(first) == args_key(second)
    assert args_key(first) != args_key(encode_args({"a": 2.0, "b": [ConvexInt64(2)]}))


def test_arguments_too_deep_to_encode_are_refused() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ConvexValueError, match="nested too deeply"):
        encode_args({"v": deep})


# Properties: every value Convex can hold round-trips; anything else is refused at its key path

FIELD_NAMES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12).filter(
    lambda name: not name.startswith("$")
)
LEAVES = (
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers(-(2**53), 2**53)
    | st.integers(-(2**63), 2**63 - 1).map(ConvexInt64)
    | st.text()
    | st.binary()
)
CONVEX_VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(FIELD_NAMES, inner, max_size=4)
    ),
    max_leaves=20,
)


def same(sent: Any, received: Any) -> bool:
    """Whether a decoded value is what was sent: ints as floats, tuples as lists, NaN, -0.0."""
    if isinstance(sent, float | int) and not isinstance(sent, bool):
        return isinstance(received, float) and (
            (math.isnan(sent) and math.isnan(received))
            or (sent == received and math.copysign(1, sent) == math.copysign(1, received))
        )
    if isinstance(sent, list | tuple):
        return (
            isinstance(received, list)
            and len(sent) == len(received)
            and all(map(same, sent, received))
        )
    if isinstance(sent, dict):
        return (
            isinstance(received, dict)
            and sent.keys() == received.keys()
            and all(same(sent[key], received[key]) for key in sent)
        )
    return type(sent) is type(received) and sent == received


@given(CONVEX_VALUES)
def test_every_value_convex_can_hold_round_trips(value: Any) -> None:
    assert same(value, round_trip(value))


LONE_SURROGATES = st.text(st.characters(categories=["Cs"]), min_size=1)
BAD_LEAVES = st.one_of(
    st.sets(st.integers(), max_size=2).map(lambda value: (value, "set is not a Convex value")),
    st.just((object(), "object is not a Convex value")),
    st.complex_numbers().map(lambda value: (value, "complex is not a Convex value")),
    st.integers(min_value=2**53 + 1).map(lambda value: (value, "is outside ±2**53")),
    st.integers(max_value=-(2**53) - 1).map(lambda value: (value, "is outside ±2**53")),
    st.tuples(st.text(max_size=3), LONE_SURROGATES, st.text(max_size=3)).map(
        lambda parts: ("".join(parts), "lone surrogate")
    ),
)
STEPS = st.lists(st.one_of(FIELD_NAMES, st.integers(0, 3)), max_size=4)


@given(FIELD_NAMES, STEPS, BAD_LEAVES, CONVEX_VALUES)
def test_anything_else_is_refused_naming_its_key_path(
    name: str, steps: list[str | int], bad: tuple[Any, str], sibling: Any
) -> None:
    value, problem = bad
    path = f"args[{name!r}]"
    for step in steps:
        path += f"[{step!r}]"
    for step in reversed(steps):
        # Valid company before the bad value: the error must still find it.
        value = [sibling] * step + [value] if isinstance(step, int) else {step: value}
    with pytest.raises(ConvexValueError) as caught:
        encode_args({name: value})
    assert str(caught.value).startswith(f"{path}: ")
    assert problem in str(caught.value)


@pytest.mark.parametrize("text", ["🙂 a smile", "a \\ud800 typed out", "é"])
def test_text_that_only_looks_like_a_surrogate_is_sent(text: str) -> None:
    encoded, key = encode_args({"text": text})
    assert encoded == {"text": text}
    assert json.loads(key) == {"text": text}
