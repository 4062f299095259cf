// Trusts JWTs minted by the Flask app (flask_convex.auth). The Flask side
// publishes its issuer and JWKS; set them on the deployment with
// `npx convex env set CONVEX_AUTH_ISSUER ...` (and CONVEX_AUTH_JWKS,
// CONVEX_AUTH_APPLICATION_ID). Without an issuer, no provider is configured
// and every caller is anonymous.
const issuer = process.env.CONVEX_AUTH_ISSUER;

export default {
  providers: issuer
    ? [
        {
          type: "customJwt",
          issuer,
          jwks: process.env.CONVEX_AUTH_JWKS!,
          algorithm: "RS256",
          applicationID: process.env.CONVEX_AUTH_APPLICATION_ID,
        },
      ]
    : [],
};
