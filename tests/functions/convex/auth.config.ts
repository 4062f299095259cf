// Driven by the deployment's env, so each test picks its own issuers and keys:
// a custom JWT provider (TEST_AUTH_*) and an OIDC provider (TEST_OIDC_DOMAIN).
const issuer = process.env.TEST_AUTH_ISSUER;
const oidcDomain = process.env.TEST_OIDC_DOMAIN;
const applicationID = process.env.TEST_AUTH_APPLICATION_ID;

export default {
  providers: [
    ...(issuer
      ? [{ type: "customJwt", issuer, jwks: process.env.TEST_AUTH_JWKS!, algorithm: "RS256", applicationID }]
      : []),
    ...(oidcDomain ? [{ domain: oidcDomain, applicationID: applicationID! }] : []),
  ],
};
