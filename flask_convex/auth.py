"""The built-in JWT issuer: Convex identities for flask-login users, and the keys to verify them.

Set `CONVEX_AUTH_ISSUER` to the app's public URL and every Convex call made for a
logged-in `current_user` carries a short-lived RS256 token with `sub` =
`current_user.get_id()` and the claims `@convex.identity_claims` returns for
them (e.g. name, email); anonymous users get none. The app serves
`/.well-known/jwks.json` and `/.well-known/openid-configuration`, and
`flask convex auth-config` prints the `convex/auth.config.ts` that trusts it.

Keys: `CONVEX_AUTH_PRIVATE_KEY` (PEM text, a PEM file path or a joserfc
`RSAKey`; also read from the environment variable of that name), else a key
generated once and kept in the instance folder (mode 0600). Rotating:
`flask convex rotate-key` retires the instance key, which stays in the JWKS
until the tokens it signed have expired (restart the app after rotating); with
a configured key, set the new one and list the old one in
`CONVEX_AUTH_PREVIOUS_KEYS` until its tokens have expired. A deployment given
the JWKS inline (a data: URI) needs its auth.config regenerated and redeployed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, jsonify
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from . import current
from .errors import ConvexConfigError
from .state import ConvexState, Hooks

if TYPE_CHECKING:
    from flask.config import Config

ALGORITHM: Final = "RS256"
JWKS_PATH: Final = "/.well-known/jwks.json"
DISCOVERY_PATH: Final = "/.well-known/openid-configuration"
KEY_FILE: Final = "convex-auth-key.pem"
_RETIRED_PREFIX: Final = "convex-auth-key.retired-"
_SET_BY_ISSUER: Final = frozenset({"iss", "sub", "aud", "iat", "exp", "nbf", "jti"})
# A claim of one of these names would stand in for another user in ctx.auth.getUserIdentity().
_DERIVED_BY_CONVEX: Final = frozenset({"tokenIdentifier", "subject", "issuer"})
_CACHE_SIZE: Final = 1024

blueprint: Final = Blueprint("convex_auth", __name__)


def init_app(app: Flask, state: ConvexState) -> None:
    """Turn the issuer on for `app`: load its keys, serve its documents, load users' tokens."""
    issuer = TokenIssuer.from_config(app.config, app.instance_path, state.hooks)
    app.extensions["convex_auth"] = issuer
    state.fallback_loader = issuer.user_token
    app.register_blueprint(blueprint)


def current_issuer() -> TokenIssuer:
    """The current app's issuer, or a ConvexConfigError saying how to turn it on."""
    issuer: TokenIssuer | None = current.app().extensions.get("convex_auth")
    if issuer is None:
        raise ConvexConfigError(
            "The built-in token issuer is off: set CONVEX_AUTH_ISSUER to the app's public URL "
            "before Convex(app) or convex.init_app(app)"
        )
    return issuer


def jwks_data_uri(jwks: Mapping[str, Any]) -> str:
    """A JWKS as the data: URI auth.config.ts accepts, for deployments that cannot reach the app."""
    encoded = base64.b64encode(json.dumps(jwks, separators=(",", ":")).encode()).decode()
    return f"data:text/plain;charset=utf-8;base64,{encoded}"


def key_id(key: RSAKey) -> str:
    """The key's `kid`: its own if it has one, else its RFC 7638 thumbprint (stable across runs)."""
    return key.kid or key.thumbprint()


@dataclass(frozen=True, slots=True)
class PublishedKey:
    """A verification key in the JWKS; a retired one is dropped once its tokens have expired."""

    key: RSAKey
    until: float | None = None


@dataclass(frozen=True, slots=True)
class _Minted:
    token: str
    expires: int


class TokenIssuer:
    """Mints RS256 JWTs for users and publishes what Convex needs to verify them."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        ttl: int,
        signing_key: RSAKey,
        published: Iterable[PublishedKey] = (),
        hooks: Hooks | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self.signing_key = signing_key
        self.published = [PublishedKey(signing_key), *published]
        self.kid = key_id(signing_key)
        self.hooks = hooks
        self.clock: Callable[[], float] = time.time
        self._cache: OrderedDict[tuple[str, str], _Minted] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config, instance_path: str, hooks: Hooks) -> TokenIssuer:
        """Build the issuer from CONVEX_AUTH_* settings, with errors naming the bad one."""
        issuer = _checked_issuer(config["CONVEX_AUTH_ISSUER"])
        audience = config["CONVEX_AUTH_APPLICATION_ID"]
        if not isinstance(audience, str) or not audience:
            raise ConvexConfigError(
                "CONVEX_AUTH_APPLICATION_ID must be a non-empty str: the applicationID of "
                "convex/auth.config.ts"
            )
        ttl = config["CONVEX_AUTH_TOKEN_TTL"]
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 60:
            raise ConvexConfigError(
                f"CONVEX_AUTH_TOKEN_TTL must be whole seconds >= 60, not {ttl!r}"
            )
        published = [
            PublishedKey(_read_key(value, "CONVEX_AUTH_PREVIOUS_KEYS"))
            for value in config["CONVEX_AUTH_PREVIOUS_KEYS"]
        ]
        configured = _configured_key(config)
        if configured:
            signing_key = _read_key(configured, "CONVEX_AUTH_PRIVATE_KEY")
        else:
            signing_key = _instance_key(Path(instance_path))
            published += _retired_keys(Path(instance_path), ttl)
        return cls(issuer, audience, ttl, signing_key, published, hooks)

    def mint(self, subject: str, claims: Mapping[str, Any] | None = None) -> str:
        """A signed token for `subject` with extra `claims`, valid for CONVEX_AUTH_TOKEN_TTL."""
        return self._mint(subject, _checked_claims(claims or {}, "mint()")).token

    def user_token(self, force_refresh: bool = False) -> str | None:
        """The token loader for flask-login's `current_user`: None when nobody is logged in.

        Tokens are reused until shortly before they expire; `force_refresh` mints anew.
        """
        user = _current_user()
        if user is None:
            return None
        subject = user.get_id()
        if not isinstance(subject, str) or not subject:
            raise ConvexConfigError(
                f"current_user.get_id() must return a non-empty str to be a token subject, "
                f"not {subject!r}"
            )
        loader = self.hooks.identity_claims if self.hooks else None
        claims = _checked_claims(loader(user) if loader else {})
        key = (subject, json.dumps(claims, sort_keys=True))
        margin = min(60, self.ttl // 4)
        with self._lock:
            cached = self._cache.get(key)
            if cached and not force_refresh and cached.expires - self.clock() > margin:
                self._cache.move_to_end(key)
                return cached.token
        minted = self._mint(subject, claims)
        with self._lock:
            self._cache[key] = minted
            self._cache.move_to_end(key)
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return minted.token

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify tokens still in circulation, as a JWKS."""
        now = self.clock()
        return {
            "keys": [
                {
                    **entry.key.as_dict(private=False),
                    "kid": key_id(entry.key),
                    "use": "sig",
                    "alg": ALGORITHM,
                }
                for entry in self.published
                if entry.until is None or entry.until > now
            ]
        }

    def discovery(self) -> dict[str, Any]:
        """The OpenID Connect discovery document Convex reads for an OIDC provider."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.issuer + JWKS_PATH,
            # Convex never sends users here; the OIDC library it uses requires the field.
            "authorization_endpoint": self.issuer,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
        }

    def deployment_env(self) -> dict[str, str]:
        """The environment that points the local deployment at this issuer, JWKS inline."""
        return {
            "CONVEX_AUTH_ISSUER": self.issuer,
            "CONVEX_AUTH_JWKS": jwks_data_uri(self.jwks()),
            "CONVEX_AUTH_APPLICATION_ID": self.audience,
        }

    def auth_config(self, *, oidc: bool = False, inline_jwks: bool = False) -> str:
        """The `convex/auth.config.ts` that makes a deployment accept this issuer's tokens."""
        provider: dict[str, str]
        if oidc:
            if inline_jwks:
                raise ConvexConfigError(
                    "An OIDC provider reads the JWKS from the app; drop --inline"
                )
            provider = {"domain": self.issuer, "applicationID": self.audience}
        else:
            jwks = jwks_data_uri(self.jwks()) if inline_jwks else self.issuer + JWKS_PATH
            provider = {
                "type": "customJwt",
                "issuer": self.issuer,
                "jwks": jwks,
                "algorithm": ALGORITHM,
                "applicationID": self.audience,
            }
        fields = "".join(
            f"      {name}: {json.dumps(value)},\n" for name, value in provider.items()
        )
        note = "// The JWKS is inline: regenerate and redeploy after `flask convex rotate-key`.\n"
        return (
            f"// Accept tokens minted by the Flask app at {self.issuer}.\n"
            "// Generated by `flask convex auth-config`.\n"
            + (note if inline_jwks else "")
            + "export default {\n  providers: [\n    {\n"
            + fields
            + "    },\n  ],\n};\n"
        )

    def _mint(self, subject: str, claims: Mapping[str, Any]) -> _Minted:
        now = int(self.clock())
        payload = {
            **claims,
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.ttl,
            # Unique, so a forced refresh never returns the token Convex just rejected.
            "jti": uuid.uuid4().hex,
        }
        header = {"alg": ALGORITHM, "typ": "JWT", "kid": self.kid}
        token = jwt.encode(header, payload, self.signing_key, algorithms=[ALGORITHM])
        return _Minted(token, now + self.ttl)


def _configured_key(config: Mapping[str, Any]) -> Any:
    """The signing key the app was given, from config or the environment; None if none."""
    return config["CONVEX_AUTH_PRIVATE_KEY"] or os.environ.get("CONVEX_AUTH_PRIVATE_KEY")


def rotate_key() -> str:
    """Retire the current app's instance-folder signing key for a new one; returns the new kid."""
    current_issuer()
    app = current.app()
    if _configured_key(app.config):
        raise ConvexConfigError(
            "CONVEX_AUTH_PRIVATE_KEY is set: rotate by setting the new key there and listing "
            "the old one in CONVEX_AUTH_PREVIOUS_KEYS until its tokens have expired"
        )
    folder = Path(app.instance_path)
    in_use = folder / KEY_FILE
    if in_use.exists():
        in_use.rename(folder / f"{_RETIRED_PREFIX}{int(time.time())}.pem")
    return key_id(_instance_key(folder))


@blueprint.get(JWKS_PATH)
def _jwks_view() -> Response:
    return jsonify(current_issuer().jwks())


@blueprint.get(DISCOVERY_PATH)
def _discovery_view() -> Response:
    return jsonify(current_issuer().discovery())


def _checked_issuer(url: Any) -> str:
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        valid = valid and not (url.endswith("/") or parts.query or parts.fragment)
    except (AttributeError, TypeError, ValueError):
        valid = False
    if not valid:
        raise ConvexConfigError(
            f"CONVEX_AUTH_ISSUER {url!r} must be the app's public URL, http(s)://host[:port][/path]"
            " without a trailing '/', query or fragment, e.g. https://app.example.com"
        )
    return str(url)


def _checked_claims(claims: Any, source: str = "identity_claims") -> dict[str, Any]:
    what = f"The claims from {source}"
    if not isinstance(claims, Mapping):
        raise ConvexConfigError(f"{what} must be a dict, not {type(claims).__name__}")
    for name in claims:
        if not isinstance(name, str):
            raise ConvexConfigError(f"{what} have a non-str name {name!r}")
        if name in _SET_BY_ISSUER or name in _DERIVED_BY_CONVEX:
            who = "the issuer sets itself" if name in _SET_BY_ISSUER else "Convex derives"
            reserved = ", ".join(sorted(_SET_BY_ISSUER | _DERIVED_BY_CONVEX))
            raise ConvexConfigError(f"{what} include {name!r}, which {who}; leave out {reserved}")
    try:
        json.dumps(claims)
    except (TypeError, ValueError) as error:
        raise ConvexConfigError(f"{what} must be JSON values: {error}") from error
    return dict(claims)


def _current_user() -> Any:
    if not hasattr(current.app(), "login_manager"):
        raise ConvexConfigError(
            "CONVEX_AUTH_ISSUER mints tokens for flask-login users: "
            "set up flask_login.LoginManager(app)"
        )
    user = current.user()
    if user is None or not user.is_authenticated:
        return None
    return user


def _read_key(value: Any, setting: str) -> RSAKey:
    """An RSA private key from PEM text, a PEM file path or a joserfc `RSAKey`."""
    if isinstance(value, RSAKey):
        value = value.as_dict(private=True)
    elif isinstance(value, bytes):
        value = value.decode()
    elif not isinstance(value, str):
        raise ConvexConfigError(f"{setting} must be PEM text or a PEM file path, not {value!r}")
    if isinstance(value, str) and not value.lstrip().startswith("-----BEGIN"):
        try:
            value = Path(value).read_text()
        except OSError as error:
            raise ConvexConfigError(
                f"{setting}: cannot read the PEM file {value!r}: {error}"
            ) from error
    try:
        key = RSAKey.import_key(value)
    except (JoseError, ValueError, TypeError) as error:
        raise ConvexConfigError(f"{setting} is not an RSA key in PEM form: {error}") from error
    if not key.is_private:
        raise ConvexConfigError(f"{setting} is a public key; the issuer needs the private key")
    return key


def _instance_key(folder: Path) -> RSAKey:
    """The key kept in the instance folder, generated on first use by whichever worker wins."""
    path = folder / KEY_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        draft = folder / f".{KEY_FILE}.{uuid.uuid4().hex}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(RSAKey.generate_key(2048).as_pem(private=True))
        # link() refuses to replace, so concurrent first runs agree on one key.
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return _read_key(str(path), str(path))


def _retired_keys(folder: Path, ttl: int) -> list[PublishedKey]:
    """Retired instance keys still verifying live tokens; the rest are deleted."""
    kept = []
    for path in folder.glob(f"{_RETIRED_PREFIX}*.pem"):
        retired_at = path.name.removeprefix(_RETIRED_PREFIX).removesuffix(".pem")
        # Convex allows 5 s of clock skew on exp.
        until = int(retired_at) + ttl + 5 if retired_at.isdigit() else 0
        if until > time.time():
            kept.append(PublishedKey(_read_key(str(path), str(path)), until))
        else:
            path.unlink()
    return kept
