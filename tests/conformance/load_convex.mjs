// Loads the official npm `convex` clients from the local deployment's
// installed server directory (FLASK_CONVEX_SERVER_DIR), so the scripts test
// exactly the version the server pins.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.FLASK_CONVEX_SERVER_DIR, "package.json"));

export const { ConvexClient, ConvexHttpClient } = require("convex/browser");
export const { ConvexError } = require("convex/values");

/** Prints the scenario's findings as one JSON line for the Python test to assert on. */
export function report(findings) {
  process.stdout.write(
    `${JSON.stringify(findings, (_key, value) => (typeof value === "bigint" ? `${value}n` : value))}\n`,
  );
}

/** Resolves with the first value `predicate` accepts from a ConvexClient subscription. */
export function nextValue(client, name, args, predicate) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting on ${name}`)), 10_000);
    const unsubscribe = client.onUpdate(name, args, (value) => {
      if (predicate(value)) {
        clearTimeout(timer);
        unsubscribe();
        resolve(value);
      }
    });
  });
}
