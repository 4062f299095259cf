"""File storage throughput and scheduler lateness of the local Convex deployment.

Upload and download of an 8 MiB file through the storage routes, in MB/s, against a
bare Node HTTP server taking and serving the same bytes in the same run (the
machine is noisy: the ratios matter more than the figures). Then the lateness of
scheduled functions across a `kill -9` and restart: a job whose time passed while
the deployment was down, and one due after it came back. Last, what deleting a
file costs in a deployment of 100,000 other documents against an empty one: the
blob's users are counted, so it should not grow with the data.

Run: ``python -m benchmarks.local_storage [--rounds 5]``
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from benchmarks._node import bare_node
from flask_convex.local import LocalDeployment

FUNCTIONS = Path(__file__).resolve().parent.parent / "tests" / "functions" / "convex"
SIZE = 8 * 1024 * 1024
BLOB = os.urandom(SIZE)

BARE_SERVER = f"""
const body = Buffer.alloc({SIZE}, 7);
require("http").createServer((req, res) => {{
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {{
    if (req.method === "POST") {{
      Buffer.concat(chunks);
      res.writeHead(200, {{ "content-type": "application/json" }});
      res.end('{{"storageId":"x"}}');
    }} else {{
      res.writeHead(200, {{ "content-type": "application/octet-stream" }});
      res.end(body);
    }}
  }});
}}).listen(0, "127.0.0.1", function () {{
  console.log(`ready at http://127.0.0.1:${{this.address().port}}`);
}});
"""


def throughput(rounds: int, transfer: Callable[[], object]) -> float:
    """Median MB/s of `rounds` transfers of SIZE bytes."""
    transfer()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        transfer()
        times.append(time.perf_counter() - start)
    return SIZE / 1e6 / statistics.median(times)


def bare(rounds: int) -> tuple[float, float]:
    with bare_node(BARE_SERVER) as url, httpx.Client(base_url=url) as client:
        up = throughput(rounds, lambda: client.post("/", content=BLOB).raise_for_status())
        down = throughput(rounds, lambda: client.get("/").raise_for_status())
        return up, down


def local(rounds: int, data_dir: Path) -> tuple[float, float]:
    with (
        LocalDeployment(FUNCTIONS, data_file=data_dir / "storage.jsonl") as deployment,
        httpx.Client(base_url=deployment.url, timeout=60) as client,
    ):
        stored: list[str] = []

        def upload() -> None:
            url = client.post("/api/mutation", json={"path": "files:generateUploadUrl", "args": {}})
            answer = client.post(
                url.json()["value"], content=BLOB, headers={"Content-Type": "image/png"}
            )
            stored.append(answer.raise_for_status().json()["storageId"])

        up = throughput(rounds, upload)
        path = f"/api/storage/{stored[0]}"
        down = throughput(rounds, lambda: client.get(path).raise_for_status())
        return up, down


def lateness(data_dir: Path) -> tuple[float, float, float]:
    """Seconds late: a job due while down, one due after the restart; and the restart's duration."""
    data_file = data_dir / "jobs.jsonl"
    crashed = LocalDeployment(FUNCTIONS, data_file=data_file)
    crashed.start()
    now = time.time() * 1000
    jobs = [
        httpx.post(
            f"{crashed.url}/api/mutation",
            json={"path": "jobs:at", "args": {"text": text, "when": now + delay}},
        ).json()["value"]
        for text, delay in (("while down", 2000.0), ("after restart", 20000.0))
    ]
    assert crashed.pid is not None
    os.kill(crashed.pid, signal.SIGKILL)
    crashed.wait()
    crashed.stop()
    time.sleep(3)  # the first job's time passes while the deployment is down
    started = time.perf_counter()
    with LocalDeployment(FUNCTIONS, data_file=data_file) as restarted:
        restart = time.perf_counter() - started
        late = []
        for job_id in jobs:
            while True:
                job = httpx.post(
                    f"{restarted.url}/api/query",
                    json={"path": "jobs:job", "args": {"id": job_id}},
                ).json()["value"]
                if job["state"]["kind"] == "success":
                    late.append((job["completedTime"] - job["scheduledTime"]) / 1000)
                    break
                time.sleep(0.02)
    return late[0], late[1], restart


def delete_ms(rounds: int, documents: int) -> float:
    """Median ms to delete a stored file (`files:remove`) beside `documents` imported notes."""
    with (
        LocalDeployment(FUNCTIONS) as deployment,
        httpx.Client(base_url=deployment.url, headers=deployment.admin_headers) as client,
    ):
        if documents:
            rows = b"".join(b'{"text": "note %d"}\n' % n for n in range(documents))
            token = client.post("/api/import/start_upload").json()["uploadToken"]
            params = {"uploadToken": token, "partNumber": 1}
            part = client.post("/api/import/upload_part", params=params, content=rows).json()
            args = {"format": "jsonLines", "tableName": "notes"}
            body = {"import": args, "uploadToken": token, "partTokens": [part]}
            import_id = client.post("/api/import/finish_upload", json=body).json()["importId"]
            client.post("/api/perform_import", json={"importId": import_id}).raise_for_status()
        times = []
        for round_ in range(rounds + 1):
            stored = {
                "path": "files:storeText",
                "args": {"text": f"{round_}", "type": "text/plain"},
            }
            file_id = client.post("/api/action", json=stored).json()["value"]
            start = time.perf_counter()
            removed = {"path": "files:remove", "args": {"id": file_id}}
            client.post("/api/action", json=removed).raise_for_status()
            times.append(time.perf_counter() - start)
        return statistics.median(times[1:]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="transfers per measurement")
    rounds = parser.parse_args().rounds
    bare_up, bare_down = bare(rounds)
    with tempfile.TemporaryDirectory() as data_dir:
        up, down = local(rounds, Path(data_dir))
        while_down, after_restart, restart = lateness(Path(data_dir))
    empty, full = delete_ms(rounds * 4, 0), delete_ms(rounds * 4, 100_000)
    print(
        f"8 MiB upload:   bare Node {bare_up:7.0f} MB/s, local deployment {up:7.0f} MB/s"
        f" = {up / bare_up:.2f} x"
    )
    print(
        f"8 MiB download: bare Node {bare_down:7.0f} MB/s, local deployment {down:7.0f} MB/s"
        f" = {down / bare_down:.2f} x"
    )
    print(f"scheduler after kill -9: restart took {restart:.2f} s")
    print(f"  a job due while it was down ran {while_down:.2f} s late (the downtime)")
    print(f"  a job due after the restart ran {after_restart * 1000:.0f} ms late")
    print(
        f"deleting a file: {empty:.1f} ms in an empty deployment,"
        f" {full:.1f} ms beside 100,000 documents = {full / empty:.2f} x"
    )


if __name__ == "__main__":
    main()
