// Authentication as the Convex backend does it (protocol section 4): providers
// come from the app's `convex/auth.config.ts`, tokens are verified before any
// function runs, and functions see the identity the real backend would build.

import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  jwtVerify,
} from "jose";
import { AuthError } from "./errors.mjs";

const LEEWAY_SECONDS = 5;
const DISCOVERY_PATH = "/.well-known/openid-configuration";
const REGISTERED_CLAIMS = new Set(["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "fva"]);
const OIDC_CLAIMS = {
  name: "name",
  given_name: "givenName",
  family_name: "familyName",
  nickname: "nickname",
  preferred_username: "preferredUsername",
  profile: "profileUrl",
  picture: "pictureUrl",
  website: "websiteUrl",
  email: "email",
  email_verified: "emailVerified",
  gender: "gender",
  birthdate: "birthday",
  zoneinfo: "timezone",
  locale: "language",
  phone_number: "phoneNumber",
  phone_number_verified: "phoneNumberVerified",
  updated_at: "updatedAt",
};

const unauthenticated = (message) => new AuthError(401, "Unauthenticated", message);

/** Who a request runs as: `identity` is what `ctx.auth.getUserIdentity()` returns. */
export const ANONYMOUS = Object.freeze({ identity: null, admin: false });

/** Verifies user tokens against the configured providers and admin keys against one secret. */
export class Authenticator {
  /**
   * `authConfig` is the default export of auth.config.ts (or undefined).
   * `givenKeys` maps issuers (normalized) to a JWKS that replaces the one their
   * provider names: tests trust an app whose JWKS URL nothing serves.
   */
  constructor(authConfig, adminKey, givenKeys = new Map()) {
    this.providers = (authConfig?.providers ?? []).map((config) => normalizeProvider(config, givenKeys));
    this.adminKey = adminKey;
  }

  /** Authenticates an `Authorization` header value (or undefined) of an HTTP request. */
  async fromHeader(header) {
    if (header === undefined) return ANONYMOUS;
    const scheme = header.slice(0, 7).toLowerCase();
    if (header.length < 7 || (scheme !== "bearer " && scheme !== "convex ")) {
      throw new AuthError(400, "InvalidHeaderFailure", "Authorization header must be `Bearer <token>` or `Convex <admin key>`");
    }
    const value = header.slice(7).trim();
    if (scheme === "bearer ") return { identity: await this.verifyToken(value), admin: false };
    return this.adminAuth(value);
  }

  /** Admin access from `<key>` or `<key>:<base64 JSON identity>` (acting as a user). */
  adminAuth(value, actingAs = null) {
    const key = this.adminKey;
    if (!key || (value !== key && !value.startsWith(`${key}:`))) {
      throw new AuthError(401, "BadAdminKey", "The provided admin key is invalid for this deployment");
    }
    let identity = actingAs;
    if (value !== key) {
      try {
        identity = JSON.parse(Buffer.from(value.slice(key.length + 1), "base64").toString("utf8"));
      } catch {
        throw new AuthError(400, "InvalidAdminKey", "Admin key identity suffix is not base64 JSON");
      }
    }
    return { identity: identity && completeIdentity(identity), admin: true };
  }

  /** Verifies a JWT and returns the identity functions see. */
  async verifyToken(token) {
    let claims;
    try {
      claims = decodeJwt(token);
    } catch (error) {
      throw new AuthError(401, "InvalidAuthHeader", `Could not parse JWT payload: ${error.message}`);
    }
    if (typeof claims.iss !== "string") {
      throw new AuthError(401, "InvalidAuthHeader", "Missing issuer in JWT payload");
    }
    const audiences = [claims.aud ?? []].flat();
    const issuer = normalizeIssuer(claims.iss);
    const provider = this.providers.find(
      (p) => p.issuer === issuer && (p.applicationID === undefined || audiences.includes(p.applicationID)),
    );
    if (provider === undefined) {
      throw new AuthError(
        401,
        "NoAuthProvider",
        `No auth provider found matching the given token (issuer ${claims.iss}, audience ${JSON.stringify(claims.aud ?? null)}). `
          + `Check that auth.config.ts lists this issuer and application ID.`,
      );
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, await provider.keys(), {
        algorithms: provider.algorithms,
        audience: provider.applicationID,
        clockTolerance: LEEWAY_SECONDS,
        requiredClaims: provider.oidc ? ["exp", "sub", "iat"] : ["exp", "sub"],
      }));
    } catch (error) {
      if (error instanceof AuthError) throw error;
      const reason = error.code === "ERR_JWT_EXPIRED" ? "Token expired" : error.message;
      throw unauthenticated(`Could not verify token claim: ${reason} (issuer ${provider.issuer}, keys from ${provider.keysFrom})`);
    }
    return buildIdentity(payload, provider.oidc);
  }
}

function buildIdentity(payload, oidc) {
  const identity = {};
  for (const [claim, value] of Object.entries(payload)) {
    if (REGISTERED_CLAIMS.has(claim)) continue;
    if (oidc && claim in OIDC_CLAIMS) {
      identity[OIDC_CLAIMS[claim]] = claim === "updated_at" && typeof value === "number"
        ? new Date(value * 1000).toISOString()
        : value;
    } else if (oidc && claim === "address") {
      identity.address = value?.formatted ?? value;
    } else {
      flattenClaim(identity, claim, value);
    }
  }
  // Last, so a custom claim named like one of these cannot impersonate another user.
  return Object.assign(identity, {
    tokenIdentifier: `${payload.iss}|${payload.sub}`,
    subject: payload.sub,
    issuer: payload.iss,
  });
}

function flattenClaim(target, name, value) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) flattenClaim(target, `${name}.${key}`, inner);
  } else {
    target[name] = value;
  }
}

function completeIdentity(attributes) {
  const { issuer, subject } = attributes;
  const tokenIdentifier = attributes.tokenIdentifier ?? `${issuer}|${subject}`;
  if (attributes.tokenIdentifier === undefined && (issuer === undefined || subject === undefined)) {
    throw new AuthError(400, "InvalidAdminKey", "Acting-as identity needs tokenIdentifier or issuer and subject");
  }
  return { ...attributes, tokenIdentifier };
}

function withScheme(url) {
  return /^https?:\/\//.test(url) ? url : `https://${url}`;
}

/** An issuer as providers and tokens are matched: with a scheme, without trailing slashes. */
export function normalizeIssuer(issuer) {
  return withScheme(issuer).replace(/\/+$/, "");
}

/**
 * A provider of auth.config.ts, its `issuer` normalized once for matching
 * tokens; `keysFrom` says where its keys come from, for error messages.
 */
function normalizeProvider(config, givenKeys) {
  const oidc = config.type !== "customJwt";
  const issuer = normalizeIssuer(oidc ? config.domain : config.issuer);
  const given = givenKeys.get(issuer);
  let keysFrom = oidc ? `${issuer}${DISCOVERY_PATH}` : describeJwks(config.jwks);
  let keys = cached(() => (oidc ? discoverKeys(issuer) : keySetFromUrl(config.jwks)));
  if (given !== undefined) {
    keysFrom = "the JWKS the tests gave (inline)";
    keys = async () => createLocalJWKSet(given);
  }
  return {
    oidc,
    issuer,
    applicationID: config.applicationID,
    algorithms: oidc ? ["RS256", "EdDSA"] : [config.algorithm ?? "RS256"],
    keys,
    keysFrom,
  };
}

function describeJwks(url) {
  return url.startsWith("data:") ? "an inline JWKS (data: URI)" : withScheme(url);
}

/** Memoizes a successful async result; a failure is retried on the next call. */
function cached(load) {
  let promise = null;
  return () => {
    promise ??= load().catch((error) => {
      promise = null;
      throw error;
    });
    return promise;
  };
}

async function keySetFromUrl(url) {
  if (url.startsWith("data:")) {
    const response = await fetch(url);
    return createLocalJWKSet(await response.json());
  }
  // Cached by jose; an unknown `kid` triggers a refetch (key rotation).
  return createRemoteJWKSet(new URL(withScheme(url)), { cooldownDuration: 0 });
}

/** Fetches the key set of an OIDC `issuer` (normalized) through its discovery document. */
async function discoverKeys(issuer) {
  const url = `${issuer}${DISCOVERY_PATH}`;
  let config;
  try {
    const response = await fetch(url, { headers: { accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    config = await response.json();
  } catch (error) {
    throw unauthenticated(`Could not fetch OIDC discovery document ${url}: ${error.message}`);
  }
  if (normalizeIssuer(config.issuer ?? "") !== issuer || typeof config.jwks_uri !== "string") {
    throw unauthenticated(`OIDC discovery document ${url} has issuer ${config.issuer}, expected ${issuer}`);
  }
  return createRemoteJWKSet(new URL(config.jwks_uri), { cooldownDuration: 0 });
}
