"""Names Convex functions: `api.tasks.list` and plain strings, checked by the path rules."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final, Generic, ParamSpec, Protocol, TypedDict, TypeVar

_MODULE_PART: Final = re.compile(r"[A-Za-z0-9_.]{1,64}")
_HAS_ALNUM: Final = re.compile(r"[A-Za-z0-9]")
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_RESERVED_DIRS: Final = ("_system", "_deps")


ArgsT = TypeVar("ArgsT", contravariant=True)
ReturnT = TypeVar("ReturnT", covariant=True)
CallArgs = ParamSpec("CallArgs")


class FunctionReference(Generic[ArgsT, ReturnT]):
    """A function named by attribute access, as the generated `api` object in TypeScript.

    `api.tasks.list` is "tasks:list", `api.dir.file.fn` is "dir/file:fn" and
    `api.dir.file.default` is "dir/file". `FunctionReference[Args, Return]`
    is a typed reference (written by `flask convex codegen`): calls check their
    arguments against `Args` and return `Return`; untyped ones are `Any`.
    """

    __slots__ = ("_parts",)

    def __init__(self, parts: tuple[str, ...] = ()) -> None:
        self._parts = parts

    def _typed_call(
        self, args: ArgsT, /, *, token: str | None = None, url: str | None = None
    ) -> ReturnT:
        """What `fetch_*` and `preload_query` accept after this reference, for type checkers."""
        raise TypeError(f"{self!r} is called with fetch_query, fetch_mutation or fetch_action")

    def __getattr__(self, name: str) -> FunctionReference[Any, Any]:
        if name.startswith("__"):
            raise AttributeError(name)
        return FunctionReference((*self._parts, name))

    @property
    def name(self) -> str:
        """The function path sent to Convex, validated."""
        return _path_of(self._parts)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<FunctionReference {'.'.join(('api', *self._parts))}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FunctionReference):
            return self._parts == other._parts
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._parts)


class TypedCall(Protocol[CallArgs, ReturnT]):
    """A typed reference as `fetch_*` see it: the rest of the call is checked against it."""

    @property
    def _typed_call(self) -> Callable[CallArgs, ReturnT]: ...


class NoArgs(TypedDict):
    """The arguments of a typed reference to a function declared with `args: {}`."""


FunctionRef = FunctionReference[Any, Any] | str
"""What every call accepts as a function: `api.tasks.list` or "tasks:list"."""

api: Final[FunctionReference[Any, Any]] = FunctionReference()
"""The root of function references: `api.tasks.list`."""


def function_name(ref: FunctionRef) -> str:
    """Return the path Convex is called with, raising ValueError naming the broken rule."""
    if isinstance(ref, FunctionReference):
        return ref.name
    if not isinstance(ref, str):
        raise TypeError(f"A Convex function is api.<module>.<function> or a str, not {ref!r}")
    return _checked_path(ref)


@lru_cache(maxsize=1024)
def _path_of(parts: tuple[str, ...]) -> str:
    """The path `api.<parts>` stands for, validated; references are made on every use."""
    if len(parts) < 2:
        dotted = ".".join(("api", *parts))
        raise ValueError(
            f"{dotted} names a module, not a function: "
            "use api.<module>.<function>, e.g. api.tasks.list"
        )
    *module, export = parts
    path = "/".join(module)
    return function_name(path if export == "default" else f"{path}:{export}")


@lru_cache(maxsize=1024)
def _checked_path(path: str) -> str:
    module, colon, export = path.rpartition(":")
    if not colon:
        module, export = path, ""
    if not module:
        raise ValueError(f"Function path {path!r} has an empty module path")
    if module.startswith("/"):
        raise ValueError(f"Function path {path!r}: the module path must be relative")
    parts = module.split("/")
    for part in parts:
        if not _MODULE_PART.fullmatch(part) or not _HAS_ALNUM.search(part):
            raise ValueError(
                f"Function path {path!r}: module component {part!r} must be 1-64 characters "
                "of letters, digits, '_' or '.', with at least one letter or digit"
            )
    if "." in parts[-1] and not parts[-1].endswith(".js"):
        raise ValueError(f"Function path {path!r}: a module extension must be '.js'")
    if parts[0] in _RESERVED_DIRS:
        raise ValueError(f"Function path {path!r}: modules under {parts[0]}/ are reserved")
    if export and (not _IDENTIFIER.fullmatch(export) or not export.strip("_")):
        raise ValueError(
            f"Function path {path!r}: function name {export!r} must be an identifier "
            "(a letter or '_', then letters, digits or '_', at most 64, not all '_')"
        )
    return path
