"""Function references and the path rules of protocol section 1.8."""

from __future__ import annotations

import re

import pytest

from flask_convex import FunctionReference, api
from flask_convex.functions import function_name


@pytest.mark.parametrize(
    ("ref", "path"),
    [
        (api.tasks.list, "tasks:list"),
        (api.dir.file.fn, "dir/file:fn"),
        (api.dir.file.default, "dir/file"),
        (api.tasks.default, "tasks"),
        (api.a.b.c.d, "a/b/c:d"),
    ],
)
def test_api_attributes_name_the_function(ref: FunctionReference, path: str) -> None:
    assert function_name(ref) == path
    assert str(ref) == path


@pytest.mark.parametrize(
    "path",
    ["tasks:list", "dir/file:fn", "dir/file", "tasks.js:list", "tasks", "_private:_fn", "a_1:x"],
)
def test_plain_strings_pass_through_untouched(path: str) -> None:
    assert function_name(path) == path


def test_references_compare_by_path_and_show_it() -> None:
    assert api.tasks.list == api.tasks.list
    assert api.tasks.list != api.tasks.create
    assert len({api.tasks.list, api.tasks.list}) == 1
    assert repr(api.tasks.list) == "<FunctionReference api.tasks.list>"


@pytest.mark.parametrize("ref", [api, api.tasks])
def test_a_module_alone_is_refused(ref: FunctionReference) -> None:
    with pytest.raises(ValueError, match=r"names a module, not a function.*api\.tasks\.list"):
        function_name(ref)


def test_dunder_lookups_are_not_references() -> None:
    assert not hasattr(api.tasks, "__wrapped__")


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("", "empty module path"),
        (":list", "empty module path"),
        ("/tasks:list", "must be relative"),
        ("dir//file:fn", "module component '' must be 1-64 characters"),
        ("tas-ks:list", "module component 'tas-ks' must be 1-64 characters"),
        ("___:list", "at least one letter or digit"),
        ("a" * 65 + ":list", "must be 1-64 characters"),
        ("tasks.ts:list", "extension must be '.js'"),
        ("_system/tables:list", "modules under _system/ are reserved"),
        ("_deps/lib:fn", "modules under _deps/ are reserved"),
        ("tasks:1list", "function name '1list' must be an identifier"),
        ("tasks:li-st", "must be an identifier"),
        ("tasks:___", "not all '_'"),
        ("tasks:" + "f" * 65, "at most 64"),
    ],
)
def test_invalid_paths_raise_naming_the_rule(path: str, rule: str) -> None:
    with pytest.raises(ValueError, match=re.escape(rule)) as caught:
        function_name(path)
    assert repr(path) in str(caught.value)


def test_an_invalid_reference_raises_when_used() -> None:
    with pytest.raises(ValueError, match="must be an identifier"):
        function_name(getattr(api.tasks, "1x"))


def test_other_types_are_refused() -> None:
    with pytest.raises(TypeError, match=r"api\.<module>\.<function> or a str, not 42"):
        function_name(42)  # type: ignore[arg-type]
