"""Live fragments: partials rendered from Convex queries that the page keeps current.

A fragment is a wrapper element around a partial rendered with a query's value.
The wrapper carries a signed reference (query, args, partial, wrapper; never a
token), a digest of the value and the Convex timestamp it was read at. The
page's script posts references and digests (see `push` for when, with push on);
the server runs all the queries in one batch with the requester's token and
sends back out-of-band swaps of the fragments whose digest changed, or 204.
Polls of the same query and token within CONVEX_POLL_SHARE seconds share one
call (see `recent`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import InitVar, dataclass, field
from functools import lru_cache
from hashlib import blake2b, sha1, sha256
from pathlib import Path
from typing import Any, Final, TypeVar

from flask import Blueprint, Response, abort, render_template
from flask.typing import ResponseReturnValue
from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from markupsafe import Markup, escape

from . import current
from .client import Call, Outcome
from .csrf import csrf_field, csrf_token, protect
from .errors import (
    ConvexConfigError,
    ConvexConnectionError,
    ConvexFlaskError,
    ConvexRequestError,
    LiveReferenceError,
    status_for,
)
from .fetch import prepare, resolve_token
from .functions import FunctionRef
from .memo import Memo
from .preload import Preloaded, preload_call
from .rendering import partial_pieces
from .state import get_state
from .values import JsonValue, args_key, parse_json

SALT: Final = "flask-convex.live"
"""The itsdangerous salt of live references, so no other signed value passes for one."""

_Read = TypeVar("_Read")
_TAG: Final = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_ELEMENT_ID: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,127}")
_MAX_FRAGMENTS: Final = 500
_IDS_KEY: Final = "flask_convex.live_ids"
_MAX_SIGNED: Final = 1024
"""Signatures one `Signing` remembers within a second, at most."""
_MAX_VERIFIED: Final = 4096
"""Verified values one `Signing` remembers, at most."""
_MAX_VERIFIED_TEXT: Final = 4096
"""Longest signed text whose value is remembered: a long one is verified every time."""
_MAX_DIGESTS: Final = 4096
_DIGESTS: Final[Memo[tuple[bytes, int], str]] = Memo(_MAX_DIGESTS)
"""Value digests by the origin (`Outcome.origin`) of their values."""


def _package_templates() -> Path:
    here = Path(__file__).parent
    installed = here / "templates"
    # In a wheel the macros are inside the package; in a source checkout, beside it.
    return installed if installed.is_dir() else here.parent / "templates"


blueprint: Final = Blueprint(
    "convex",
    __name__,
    url_prefix="/_convex",
    static_folder="static",
    template_folder=str(_package_templates()),
)
"""Serves the vendored htmx, flask-convex.js and the poll endpoint; `init_app` registers it."""


@dataclass(frozen=True, slots=True)
class LiveRef:
    """What a live fragment shows: a query and its arguments, through a partial, in a wrapper."""

    name: str
    args: dict[str, JsonValue]
    partial: str
    tag: str = "div"
    css_class: str = ""
    kind: str = ""
    """"" for a partial rendered with the value; else a kind given to `register_kind`."""
    options: dict[str, JsonValue] = field(default_factory=dict)
    """What the kind's renderer needs besides the value, signed with the rest."""
    canonical_args: str = field(init=False, compare=False, repr=False)
    """`args` as `values.args_key` writes them, for the keys and attributes made of them."""
    known_args_key: InitVar[str] = ""
    """`args_key(args)` if the caller has it; `dataclasses.replace` never carries it over."""

    def __post_init__(self, known_args_key: str) -> None:
        object.__setattr__(self, "canonical_args", known_args_key or args_key(self.args))

    def sign(self) -> str:
        """The reference signed with the app's SECRET_KEY, safe to put in the page."""
        payload: list[Any] = [self.name, self.args, self.partial, self.tag, self.css_class]
        key: tuple[str, ...] = (
            self.name,
            self.canonical_args,
            self.partial,
            self.tag,
            self.css_class,
        )
        if self.kind:
            payload += [self.kind, self.options]
            key += (self.kind, args_key(self.options))
        return serializer().dumps(payload, key)

    @classmethod
    def showing(cls, call: Call, partial: str, tag: str, css_class: str) -> LiveRef:
        """The reference of `call`'s value rendered through `partial` in a `tag` wrapper."""
        tag = checked_tag(tag)
        return cls(call.path, call.args, partial, tag, css_class, known_args_key=call.args_key)

    @classmethod
    def load(cls, signed: str) -> LiveRef:
        """Verify a signed reference and read it; LiveReferenceError if tampered or expired."""
        max_age = current.app().config["CONVEX_LIVE_MAX_AGE"]
        try:
            return serializer().verified(signed, max_age, cls._read)
        except SignatureExpired as error:
            raise LiveReferenceError("The live reference has expired") from error
        except LiveReferenceError:
            raise
        except (BadData, ValueError, TypeError) as error:
            raise LiveReferenceError("The live reference is not valid") from error

    @classmethod
    def _read(cls, payload: Any) -> LiveRef:
        name, args, partial, tag, css_class, *extra = payload
        kind, options = extra or ("", {})
        if kind and kind not in _KINDS:
            raise LiveReferenceError(f"The live reference is of an unknown kind {kind!r}")
        return cls(name, args, partial, tag, css_class, kind, options)

    def call(self, url: str) -> Call:
        """The query this shows, to run at deployment `url`; checked and encoded when signed."""
        return Call(url, self.name, self.args, self.canonical_args)

    def query_attributes(self) -> str:
        """The query and its arguments as escaped HTML attributes, for the page's Convex client."""
        return (
            f' data-convex-query="{escape(self.name)}"'
            f' data-convex-args="{escape(self.canonical_args)}"'
        )

    def matches(self, name: str, key: str | None) -> bool:
        """Whether this shows function `name` called with arguments `key` (None: any).

        Arguments without `paginationOpts` match every page of a paginated query.
        """
        if self.name != name:
            return False
        if key is None or key == self.canonical_args:
            return True
        if "paginationOpts" not in self.args:
            return False
        return key == args_key({k: v for k, v in self.args.items() if k != "paginationOpts"})


KindRenderer = Callable[[LiveRef, Outcome, str, str, bool], Markup]
"""Renders a fragment of a kind: reference, outcome, its hash, element id, out-of-band or not."""

_KINDS: Final[dict[str, KindRenderer]] = {}


def register_kind(kind: str, renderer: KindRenderer) -> None:
    """Render live references of `kind` with `renderer` instead of their partial alone.

    A reference read from a poll is shared by every poll sending it again: the
    renderer must not change its `args` or `options`.
    """
    _KINDS[kind] = renderer


@dataclass(frozen=True, slots=True)
class PageFragment:
    """A live fragment as the page reports it: element id, signed reference, hash it shows."""

    element_id: str
    ref: str
    hash: str


@dataclass(slots=True)
class Refresh:
    """The answer to a page's fragments: swaps of what changed, and how many were refused.

    `too_large` says the swaps stopped short of CONVEX_LIVE_MAX_ANSWER bytes: the
    answer would have been larger.
    """

    swaps: list[Markup] = field(default_factory=list)
    rejected: int = 0
    too_large: bool = False
    size: int = 0

    def add(self, swaps: Iterable[Markup], limit: int) -> bool:
        """Take `swaps` one by one while the answer stays within `limit` bytes; False if not."""
        for swap in swaps:
            self.size += _size(swap)
            if self.size > limit:
                self.too_large = True
                return False
            self.swaps.append(swap)
        return True


@dataclass(slots=True)
class _Shown:
    """The fragments of a page showing one reference: it runs and renders once for all."""

    ref: LiveRef
    preloaded: Preloaded[Any]
    fragments: list[PageFragment]


def live_fragment(
    preloaded: Preloaded[Any], partial: str, tag: str = "div", css_class: str = ""
) -> Markup:
    """Render `partial` with the preloaded value as `value`, in a wrapper that keeps it live.

    Is templates' `live` (see `_as_templates_call_it`). Reading the value resolves every
    pending preload of the request in one batch; a query error is raised, as
    `preloaded.value` does.
    """
    if preloaded.call.url != get_state().url:
        raise ValueError(
            f"live() keeps {preloaded.name} current from CONVEX_URL; "
            "preload it without url= to make it live"
        )
    ref = LiveRef.showing(preloaded.call, partial, tag, css_class)
    outcome = preloaded.outcome
    outcome.unwrap()
    return _render(ref, outcome, outcome_hash(outcome), oob=False)(new_element_id(ref))


def lazy_fragment(
    function: FunctionRef,
    args: Mapping[str, Any] | None,
    partial: str,
    *,
    tag: str = "div",
    css_class: str = "",
    loading: str | None = None,
) -> Markup:
    """A wrapper in its loading state that the first push or poll fills; backs the `lazy` macro."""
    call = prepare(function, args, None)
    ref = LiveRef.showing(call, partial, tag, css_class)
    # A caller's block is Markup and stays as it is; a plain str is text, so it is escaped.
    body = render_template("convex/loading.html") if loading is None else escape(loading)
    attributes = (
        f' class="{escape(with_classes("convex-live convex-loading", css_class))}"'
        f' data-convex-ref="{ref.sign()}" data-convex-hash=""'
        + ref.query_attributes()
        + ' aria-busy="true"'
    )
    return _element(ref.tag, new_element_id(ref), attributes, [body])


def outcome_hash(outcome: Outcome) -> str:
    """A short digest of what a fragment shows, equal for equal values.

    A page shown again, or polled, usually reads an answer Convex gave before: the
    digest of a value read from an answer already seen is remembered, not recomputed.
    """
    if outcome.error is None:
        if outcome.origin is None:
            return value_digest(outcome.raw)
        digest = _DIGESTS.get(outcome.origin)
        if digest is None:
            digest = _DIGESTS.keep(outcome.origin, value_digest(outcome.raw))
        return digest
    text = f"!{type(outcome.error).__name__}:{outcome.error}"
    return blake2b(text.encode(), digest_size=12).hexdigest()


def value_digest(encoded: JsonValue) -> str:
    """The digest of a Convex-encoded value that flask-convex.js computes from a pushed one.

    SHA-256 (the browser has it natively) of the value's canonical JSON (sorted
    keys, no spaces, ASCII, Python's float notation), first 24 hex digits.
    """
    return sha256(args_key(encoded).encode()).hexdigest()[:24]


def read_json(text: str | bytes) -> Any:
    """JSON a page sent, or ValueError saying why it cannot be read (malformed, too deep)."""
    try:
        return parse_json(text.encode() if isinstance(text, str) else text)
    except ValueError as error:
        raise ValueError(f"Not valid JSON: {error}") from error


def parse_page_fragments(data: Any) -> list[PageFragment]:
    """Read the `[{"id", "ref", "hash"}, ...]` list a page sends, or raise ValueError saying why."""
    if not isinstance(data, list):
        raise ValueError("Expected a JSON list of live fragments")
    if len(data) > _MAX_FRAGMENTS:
        raise ValueError(f"At most {_MAX_FRAGMENTS} live fragments per page")
    fragments = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(key), str) for key in ("id", "ref", "hash")
        ):
            raise ValueError(f"Live fragment {index} must have string id, ref and hash")
        if not _ELEMENT_ID.fullmatch(item["id"]):
            raise ValueError(f"Live fragment {index} has an invalid element id")
        fragments.append(PageFragment(item["id"], item["ref"], item["hash"]))
    return fragments


def refresh(
    fragments: Sequence[PageFragment],
    wanted: Callable[[LiveRef], bool] | None = None,
    *,
    share: float = 0.0,
) -> Refresh:
    """Re-run the (wanted) fragments' queries in one batch and render those that changed.

    Each distinct reference runs and renders once, however many element ids
    list it, and the swaps stop at CONVEX_LIVE_MAX_ANSWER bytes (`too_large`).
    With `share` seconds, a query another poll of this process fetched that long
    ago, showing what this page shows, counts as unchanged without a call. A
    refused reference becomes an error swap; an unreachable deployment raises
    ConvexConnectionError or ConvexRequestError, so the page keeps what it shows.
    """
    state = get_state()
    recent, url = state.recent, state.url
    limit = int(current.app().config["CONVEX_LIVE_MAX_ANSWER"])
    token = resolve_token(None) if share > 0 else None
    generation = recent.generation
    result = Refresh()
    verified: dict[str, LiveRef | None] = {}
    rejected: list[str] = []
    shown: dict[tuple[Call, str, str, str], _Shown] = {}
    for fragment in fragments:
        if fragment.ref not in verified:
            try:
                verified[fragment.ref] = LiveRef.load(fragment.ref)
            except LiveReferenceError:
                verified[fragment.ref] = None
        ref = verified[fragment.ref]
        if ref is None:
            rejected.append(fragment.element_id)
            continue
        if wanted is not None and not wanted(ref):
            continue
        call = ref.call(url)
        if share > 0 and recent.unchanged((call, token), fragment.hash, share):
            continue
        key = (call, ref.partial, ref.tag, ref.css_class)
        if key not in shown:
            shown[key] = _Shown(ref, preload_call(call), [])
        shown[key].fragments.append(fragment)
    result.rejected = len(rejected)
    if rejected and not result.add(map(_rejected(), rejected), limit):
        return result
    for group in shown.values():
        outcome = group.preloaded.outcome
        if isinstance(outcome.error, ConvexConnectionError | ConvexRequestError):
            raise outcome.error
        digest = outcome_hash(outcome)
        if share > 0:
            recent.remember((group.preloaded.call, token), digest, generation)
        changed = [fragment.element_id for fragment in group.fragments if fragment.hash != digest]
        if changed:
            wrap = _render(group.ref, outcome, digest, oob=True)
            if not result.add(map(wrap, changed), limit):
                break
    return result


@blueprint.post("/poll")
def poll() -> ResponseReturnValue:
    """Answer a page's poll: 204 if nothing changed, else out-of-band swaps of what did.

    Body: `{"fragments": [{"id", "ref", "hash"}, ...]}`. 400 (with swaps) when a
    reference was refused; 413 when the answer would exceed CONVEX_LIVE_MAX_ANSWER;
    503 or 502 when Convex cannot answer.
    """
    return answer_fragments(share=float(current.app().config["CONVEX_POLL_SHARE"]))


def answer_fragments(*, share: float) -> Response:
    """The poll endpoint's answer to the page fragments posted in this request (see `poll`)."""
    protect()
    try:
        body = read_json(current.request().get_data())
        fragments = parse_page_fragments(body.get("fragments") if isinstance(body, dict) else None)
    except ValueError as error:
        abort(400, str(error))
    try:
        result = refresh(fragments, share=share)
    except ConvexFlaskError as error:
        current.app().logger.warning("Live fragments not refreshed: %s", error)
        return Response(status=status_for(error), headers={"Retry-After": "5"})
    if result.too_large:
        abort(413, "The live fragments' answer would exceed CONVEX_LIVE_MAX_ANSWER bytes.")
    if not result.swaps:
        return Response(status=204)
    return Response(
        Markup("\n").join(result.swaps),
        status=400 if result.rejected else 200,
        mimetype="text/html",
    )


def _as_templates_call_it(function: Callable[..., Markup]) -> Callable[..., Markup]:
    """`function` taking `class=`, as templates write it, for its `css_class` argument."""

    def call(*args: Any, **kwargs: Any) -> Markup:
        if "class" in kwargs:
            if "css_class" in kwargs:
                raise TypeError("give class= or css_class=, not both")
            kwargs["css_class"] = kwargs.pop("class")
        return function(*args, **kwargs)

    return call


blueprint.add_app_template_global(csrf_field, "convex_csrf_field")
blueprint.add_app_template_global(csrf_token, "convex_csrf_token")
blueprint.add_app_template_global(_as_templates_call_it(live_fragment), "convex_live")
blueprint.add_app_template_global(lazy_fragment, "convex_lazy")


def _render(ref: LiveRef, outcome: Outcome, shown: str, *, oob: bool) -> Callable[[str], Markup]:
    """The fragment for each element id it is given; a partial is rendered once for all."""
    renderer = _KINDS.get(ref.kind)
    if renderer is not None:
        return lambda element_id: renderer(ref, outcome, shown, element_id, oob)
    return _wrapper(ref, outcome, shown, oob=oob)


def render_fragment(
    ref: LiveRef,
    outcome: Outcome,
    shown: str,
    element_id: str,
    *,
    oob: bool,
    pieces: Sequence[str] | None = None,
) -> Markup:
    """The live wrapper of `ref` around the text of `pieces` (default: its partial
    rendered with the value, as `rendering.partial_pieces` gives it).

    A failed outcome shows convex/fragment_error.html instead.
    """
    return _wrapper(ref, outcome, shown, oob=oob, pieces=pieces)(element_id)


def _wrapper(
    ref: LiveRef,
    outcome: Outcome,
    shown: str,
    *,
    oob: bool,
    pieces: Sequence[str] | None = None,
) -> Callable[[str], Markup]:
    """`render_fragment` rendered and signed once, for each element id it is given."""
    classes = "convex-live"
    if outcome.error is not None:
        current.app().logger.warning("Live fragment %s failed: %s", ref.name, outcome.error)
        classes += " convex-error"
        pieces = [render_template("convex/fragment_error.html", error=outcome.error)]
    elif pieces is None:
        pieces = partial_pieces(ref.partial, value=outcome.value)
    # The signed reference is URL-safe base64 and the timestamp an integer.
    attributes = (
        f' class="{escape(with_classes(classes, ref.css_class))}" data-convex-ref="{ref.sign()}"'
        f' data-convex-hash="{escape(shown)}"'
        + ("" if outcome.ts is None else f' data-convex-ts="{outcome.ts}"')
        + ref.query_attributes()
        + (' hx-swap-oob="true"' if oob else "")
    )
    return lambda element_id: _element(ref.tag, element_id, attributes, pieces)


def _rejected() -> Callable[[str], Markup]:
    """An error wrapper without a reference, so the page stops polling for it."""
    pieces = [render_template("convex/fragment_expired.html")]
    attributes = ' class="convex-live convex-error" hx-swap-oob="true"'
    return lambda element_id: _element("div", element_id, attributes, pieces)


def _element(tag: str, element_id: str, attributes: str, pieces: Sequence[str]) -> Markup:
    """`<tag id=element_id attributes>pieces</tag>`, joined once.

    `tag` is checked (`checked_tag`), `attributes` escaped by the caller, and the
    pieces are the output of autoescaped templates, already safe HTML: plain joining,
    not `Markup.format` (ten times slower), and no copy of the body on the way.
    """
    opening = f'<{tag} id="{escape(element_id)}"{attributes}>'
    return Markup("".join((opening, *pieces, f"</{tag}>")))  # noqa: S704


def _size(text: str) -> int:
    """Bytes of `text` in UTF-8, without encoding it when it is ASCII."""
    return len(text) if text.isascii() else len(text.encode())


def with_classes(own: str, extra: str) -> str:
    """A wrapper's own classes, then the caller's `extra` ones if any."""
    return f"{own} {extra}" if extra else own


def checked_tag(tag: str) -> str:
    """`tag`, or a ValueError if it is not an HTML element name that a wrapper may use."""
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise ValueError(f"tag must be an HTML element name such as 'div' or 'ul', not {tag!r}")
    return tag


def new_element_id(ref: LiveRef) -> str:
    """A stable id for the fragment, unique within the page being rendered."""
    digest = blake2b(
        f"{ref.name}\0{ref.canonical_args}\0{ref.partial}".encode(), digest_size=6
    ).hexdigest()
    taken: dict[str, int] = current.request().environ.setdefault(_IDS_KEY, {})
    count = taken[digest] = taken.get(digest, 0) + 1
    return f"convex-{digest}" if count == 1 else f"convex-{digest}-{count}"


def serializer(salt: str = SALT) -> Signing:
    """The app's signer of values put in pages, for `salt` (default: live references)."""
    secret = current.app().secret_key
    if not secret:
        raise ConvexConfigError(
            "Live fragments sign their references with the app's SECRET_KEY: set it"
        )
    return _serializer_for(secret, salt)


class Signing:
    """itsdangerous's URL-safe timed serializer with its signer made once.

    `URLSafeTimedSerializer.dumps` and `loads` make a signer, and so derive its key,
    on every call; a page signs each of its fragments and a poll verifies them all.
    A signature carries its second, so a value signed again within the same second
    signs to the same text: `dumps` remembers this second's, and a reference shown
    by many pages (or many times in one) is signed once a second. A poll sends the
    same signed texts again and again: `verified` checks each one's signature once.
    """

    def __init__(self, secret: str | bytes, salt: str) -> None:
        # The same SHA-1 as itsdangerous's default, which it wraps in a Python function
        # that sends every HMAC down the standard library's slow path.
        options = {"digest_method": sha1}
        self._serializer = URLSafeTimedSerializer(secret, salt=salt, signer_kwargs=options)
        signer = self._serializer.make_signer()
        assert isinstance(signer, TimestampSigner)
        self._signer = signer
        # One attribute, swapped whole, so that threads never mix two seconds.
        self._this_second: tuple[int, dict[Hashable, str]] = (0, {})
        self._verified: Memo[str, tuple[int, Any]] = Memo(_MAX_VERIFIED)

    def dumps(self, value: object, key: Hashable = None) -> str:
        """`value` signed; `key`, if given, stands for it in this second's memory of signatures."""
        now = self._signer.get_timestamp()
        second, signed_now = self._this_second
        if second != now or len(signed_now) >= _MAX_SIGNED:
            signed_now = {}
            self._this_second = (now, signed_now)
        if key is None:
            key = self._serializer.serializer.dumps(value)
        signed = signed_now.get(key)
        if signed is None:
            payload = self._serializer.dump_payload(value)
            signed = signed_now[key] = self._signer.sign(payload).decode()
        return signed

    def loads(self, signed: str, max_age: int | None = None) -> Any:
        return self._serializer.load_payload(self._signer.unsign(signed, max_age=max_age))

    def verified(self, signed: str, max_age: int | None, read: Callable[[Any], _Read]) -> _Read:
        """`read` of the value `signed` carries: BadData if it is not signed by this
        key, SignatureExpired if it is older than `max_age` seconds (None: any age).

        A page polls with the same signed texts every few seconds: what `read` made
        of each one verified is remembered (texts of up to `_MAX_VERIFIED_TEXT`
        characters), and a repeat only has its age checked. `read` must make a
        value nothing changes, as every repeat shares it.
        """
        kept = self._verified.get(signed)
        if kept is None:
            payload, signed_at = self._signer.unsign(signed, max_age, return_timestamp=True)
            kept = (int(signed_at.timestamp()), read(self._serializer.load_payload(payload)))
            if len(signed) <= _MAX_VERIFIED_TEXT:
                self._verified.keep(signed, kept)
        age = self._signer.get_timestamp() - kept[0]
        if max_age is not None and age > max_age:
            raise SignatureExpired(f"Signature age {age} > {max_age} seconds")
        return kept[1]


@lru_cache(maxsize=8)
def _serializer_for(secret: str | bytes, salt: str) -> Signing:
    """One signer per secret and salt: building one costs as much as signing with it."""
    return Signing(secret, salt)
