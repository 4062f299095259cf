"""Argument validation errors worded like the real backend's."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from _local import call, eventually

from flask_convex.local import LocalDeployment

pytestmark = pytest.mark.integration


def refusal(url: str, path: str, args: dict[str, Any], route: str = "query") -> str:
    """The error message of calling `path`, below its request id line."""
    result = call(url, route, path, args)
    assert result["status"] == "error", result
    message: str = result["errorMessage"]
    assert "Validator error" not in message
    return message.split("\n", 1)[1]


@pytest.mark.parametrize(
    ("path", "args", "route", "expected"),
    [
        (
            "counter:get",
            {"name": 1},
            "query",
            "ArgumentValidationError: Value does not match validator.\n"
            "Path: .name\nValue: 1\nValidator: v.string()",
        ),
        (
            "counter:get",
            {},
            "query",
            "ArgumentValidationError: Object is missing the required field `name`. "
            "Consider wrapping the field validator in `v.optional(...)` if this is expected.\n\n"
            "Object: {}\nValidator: v.object({name: v.string()})",
        ),
        (
            "counter:increment",
            {"name": "a", "step": 2},
            "mutation",
            "ArgumentValidationError: Object contains extra field `step` that is not in the "
            'validator.\n\nObject: {name: "a", step: 2}\n'
            "Validator: v.object({by: v.optional(v.float64()), name: v.string()})",
        ),
        (
            "values:sumInt64",
            {"values": [{"$integer": "AQAAAAAAAAA="}, "two"]},
            "query",
            "ArgumentValidationError: Value does not match validator.\n"
            'Path: .values[1]\nValue: "two"\nValidator: v.int64()',
        ),
    ],
)
def test_refusals_name_the_path_and_the_validator(
    convex_url: str, path: str, args: dict[str, Any], route: str, expected: str
) -> None:
    assert refusal(convex_url, path, args, route) == expected


def test_an_id_of_another_table_is_named(convex_url: str) -> None:
    note_id = call(convex_url, "mutation", "counter:addNote", {"text": "n"})["value"]
    message = refusal(convex_url, "counter:removeNote", {"id": f"{note_id}x"}, "mutation")
    assert message.startswith("ArgumentValidationError: ")
    assert "Path: .id" in message


def test_a_schema_stored_documents_break_is_refused_and_the_last_build_keeps_serving(
    convex_functions_dir: Path, tmp_path: Path
) -> None:
    functions = tmp_path / "convex"
    shutil.copytree(convex_functions_dir, functions)
    schema = functions / "schema.ts"
    original = schema.read_text()
    status = lambda url: httpx.get(f"{url}/_flask_convex/status").json()  # noqa: E731
    with LocalDeployment(functions, watch=True) as deployment:
        note_id = call(deployment.url, "mutation", "counter:addNote", {"text": "old"})["value"]
        schema.write_text(
            original.replace("text: v.string()", "text: v.string(), author: v.string()")
        )
        eventually(lambda: status(deployment.url)["buildError"] is not None)
        error = status(deployment.url)["buildError"]
        assert error.startswith(
            f'Schema validation failed.\nDocument with ID "{note_id}" in table "notes" does not '
            "match the schema: Object is missing the required field `author`."
        )
        # The last good build, with its schema, still serves.
        assert call(deployment.url, "mutation", "counter:addNote", {"text": "new"})["status"] == (
            "success"
        )
        schema.write_text(
            original.replace("text: v.string()", "text: v.string(), author: v.optional(v.string())")
        )
        eventually(lambda: status(deployment.url)["buildError"] is None)
