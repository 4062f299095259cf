// The npm ConvexClient (WebSocket) against the local deployment:
// subscriptions, mutations confirmed by Transitions, errors, auth.
// Usage: node ws_client.mjs <url> [<jwt>]
import { ConvexClient, ConvexError, ConvexHttpClient, nextValue, report } from "./load_convex.mjs";

const [url, token] = process.argv.slice(2);
const client = new ConvexClient(url);
const findings = {};

findings.initial = await nextValue(client, "counter:get", { name: "npm-ws" }, () => true);
findings.mutation = await client.mutation("counter:increment", { name: "npm-ws" });
// A write made by another client, over HTTP, must reach this subscription.
const seen = nextValue(client, "counter:get", { name: "npm-ws" }, (value) => value === 11);
await new ConvexHttpClient(url).mutation("counter:increment", { name: "npm-ws", by: 10 });
findings.pushed = await seen;
findings.query = await client.query("counter:get", { name: "npm-ws" });
findings.action = await client.action("counter:slowIncrement", { name: "npm-ws", ms: 1 });
try {
  await client.mutation("errors:convexErrorMutation", {});
} catch (error) {
  findings.convexError = { isConvexError: error instanceof ConvexError, data: error.data };
}
if (token) {
  const authenticated = new Promise((resolve) => {
    client.setAuth(async () => token, (isAuthenticated) => resolve(isAuthenticated));
  });
  findings.authenticated = await authenticated;
  findings.identity = await nextValue(client, "identity:whoami", {}, (value) => value !== null);
}
await client.close();
report(findings);
