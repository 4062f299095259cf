"""The exception hierarchy: what callers can catch, and what the errors say."""

from __future__ import annotations

import convex
import pytest

from flask_convex import (
    ConvexAuthError,
    ConvexConfigError,
    ConvexConnectionError,
    ConvexError,
    ConvexFlaskError,
    ConvexFunctionError,
    ConvexOutcomeUnknownError,
    ConvexRequestError,
    ConvexValueError,
)
from flask_convex.errors import status_for


def test_convex_error_is_caught_by_code_written_for_the_official_client() -> None:
    error = ConvexError("Server Error", {"code": "FULL"}, ["[LOG] x"])
    with pytest.raises(convex.ConvexError) as caught:
        raise error
    assert caught.value.data == {"code": "FULL"}
    assert error.log_lines == ["[LOG] x"]


@pytest.mark.parametrize(
    "error",
    [
        ConvexError("m", None),
        ConvexFunctionError("m"),
        ConvexRequestError(500, "InternalServerError", "m"),
        ConvexAuthError(401, "InvalidAuthHeader", "m"),
        ConvexConnectionError("m"),
        ConvexOutcomeUnknownError("m"),
        ConvexValueError("m"),
        ConvexConfigError("m"),
    ],
)
def test_one_base_class_catches_every_error(error: Exception) -> None:
    assert isinstance(error, ConvexFlaskError)


def test_an_auth_error_is_a_request_error_that_says_what_happened() -> None:
    error = ConvexAuthError(401, "InvalidAuthHeader", "Token expired")
    assert isinstance(error, ConvexRequestError)
    assert str(error) == "401 InvalidAuthHeader: Token expired"


def test_bad_values_and_bad_setup_are_the_builtin_kinds_too() -> None:
    assert isinstance(ConvexValueError("m"), ValueError)
    assert isinstance(ConvexConfigError("m"), RuntimeError)


def test_a_function_error_keeps_message_and_logs() -> None:
    error = ConvexFunctionError("Uncaught Error: boom")
    assert (str(error), error.message, error.log_lines) == (
        "Uncaught Error: boom",
        "Uncaught Error: boom",
        [],
    )


def test_a_lost_write_is_a_connection_error_of_its_own_kind() -> None:
    error = ConvexOutcomeUnknownError("The answer to tasks:create was lost")
    assert isinstance(error, ConvexConnectionError)
    assert (status_for(error), status_for(ConvexConnectionError("m"))) == (504, 503)
