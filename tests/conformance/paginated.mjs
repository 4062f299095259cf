// The npm ConvexClient's paginated queries (the machinery of
// usePaginatedQuery) against the local deployment: loaded pages keep every
// item while documents are inserted above and deleted inside them.
// Usage: node paginated.mjs <url>
import { ConvexClient, ConvexHttpClient, report } from "./load_convex.mjs";

const [url] = process.argv.slice(2);
const http = new ConvexHttpClient(url);
for (let i = 0; i < 6; i++) await http.mutation("counter:addNote", { text: `note ${i}` });

const client = new ConvexClient(url);
const updates = [];
let waiting = null;
client.onPaginatedUpdate_experimental("pages:notes", {}, { initialNumItems: 2 }, (result) => {
  updates.push(result);
  if (waiting?.predicate(result)) waiting.resolve(result);
});

/** Resolves with the first update (past or future) `predicate` accepts. */
function until(predicate) {
  const seen = updates.find(predicate);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out waiting for a paginated update")), 10_000);
    waiting = { predicate, resolve: (value) => { clearTimeout(timer); resolve(value); } };
  });
}

const findings = {};
const first = await until((r) => r.status === "CanLoadMore");
findings.firstPage = first.results;
first.loadMore(2);
findings.twoPages = (await until((r) => r.results.length === 4 && r.status === "CanLoadMore")).results;
await http.mutation("counter:addNote", { text: "newest" });
findings.afterInsert = (await until((r) => r.results.includes("newest"))).results;
const latest = updates.at(-1);
latest.loadMore(10);
findings.exhausted = (await until((r) => r.status === "Exhausted")).results;
await client.close();
report(findings);
