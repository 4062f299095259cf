// The npm ConvexHttpClient against the local deployment: values, errors,
// consistent reads and auth. Usage: node http_client.mjs <url> [<jwt>]
import { ConvexError, ConvexHttpClient, report } from "./load_convex.mjs";

const [url, token] = process.argv.slice(2);
const client = new ConvexHttpClient(url);
const findings = {};

findings.floats = await client.query("values:specialFloats", {});
findings.floatsAreSpecial = Number.isNaN(findings.floats.nan) && Object.is(findings.floats.negZero, -0);
findings.sum = await client.query("values:sumInt64", { values: [2n ** 62n, 5n] });
const bytes = await client.query("values:echoBytes", { data: new Uint8Array([1, 2, 3]).buffer });
findings.bytes = [...new Uint8Array(bytes.data)];
findings.defaultExport = await client.query("values", {});
findings.increment = await client.mutation("counter:increment", { name: "npm-http", by: 2 });
findings.action = await client.action("counter:slowIncrement", { name: "npm-http", ms: 1 });
try {
  await client.query("errors:convexError", {});
} catch (error) {
  findings.convexError = { isConvexError: error instanceof ConvexError, data: error.data };
}
try {
  await client.query("errors:plainError", {});
} catch (error) {
  findings.plainError = { isConvexError: error instanceof ConvexError, message: error.message };
}
findings.consistent = await client.consistentQuery("counter:get", { name: "npm-http" });
if (token) {
  client.setAuth(token);
  findings.identity = await client.query("identity:whoami", {});
}
report(findings);
