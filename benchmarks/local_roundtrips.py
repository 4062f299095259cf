"""Round trips per second against the local Convex deployment, over loopback.

Measures, from Python with one pooled httpx client: a query, a five-query
batch (what a page render or live poll costs) and a mutation (one durable
commit). For scale, the same client against a bare Node HTTP server that
answers every request with a fixed body, measured in the same run: the
machine is noisy, so the ratios matter more than the absolute figures.

Run: ``python benchmarks/local_roundtrips.py [--seconds 2]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from benchmarks._node import bare_node
from example import FUNCTIONS_DIR
from flask_convex.local import LocalDeployment

BARE_SERVER = """
require("http").createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"status":"success","value":[]}');
  });
}).listen(0, "127.0.0.1", function () {
  console.log(`ready at http://127.0.0.1:${this.address().port}`);
});
"""


def rate(seconds: float, request: Callable[[], httpx.Response]) -> float:
    """Sequential round trips per second; every answer must be a 200."""
    for _ in range(50):  # warm up connections and caches
        request().raise_for_status()
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        request().raise_for_status()
        count += 1
    return count / elapsed


def bare_node_rate(seconds: float) -> float:
    with bare_node(BARE_SERVER) as url, httpx.Client(base_url=url) as client:
        body = {"path": "tasks:list", "args": {"list": "bench"}}
        return rate(seconds, lambda: client.post("/api/query", json=body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    seconds = parser.parse_args().seconds

    baseline = bare_node_rate(seconds)
    with (
        tempfile.TemporaryDirectory() as data_dir,
        LocalDeployment(FUNCTIONS_DIR, data_file=Path(data_dir) / "data.jsonl") as local,
        httpx.Client(base_url=local.url) as client,
    ):
        for index in range(20):
            client.post(
                "/api/mutation",
                json={"path": "tasks:create", "args": {"list": "bench", "text": f"task {index}"}},
            )
        query = {"path": "tasks:list", "args": {"list": "bench"}, "format": "convex_encoded_json"}
        task_id = client.post("/api/query", json=query).json()["value"][0]["_id"]
        toggle = {"path": "tasks:toggle", "args": {"id": task_id}}
        figures = {
            "query (20 tasks)": rate(seconds, lambda: client.post("/api/query", json=query)),
            "query_batch (5 queries)": rate(
                seconds, lambda: client.post("/api/query_batch", json={"queries": [query] * 5})
            ),
            "mutation (fsync'ed commit)": rate(
                seconds, lambda: client.post("/api/mutation", json=toggle)
            ),
        }

    print(f"bare Node HTTP server (baseline): {baseline:8.0f} round trips/s")
    for name, value in figures.items():
        print(f"{name:32s}: {value:8.0f} round trips/s  = {value / baseline:.3f} x baseline")


if __name__ == "__main__":
    main()
