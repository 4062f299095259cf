"""py-spy samples of a process, counted by the library of each sample's innermost frame."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HTTP_CLIENT = "flask_convex.connections (HTTP)"
"""flask-convex's HTTP client, which does what httpx did: not flask-convex's own work."""
OWN = "flask_convex"
"""flask-convex's own frames, its HTTP client's apart."""


def library_of(frame: str) -> str:
    """The library a py-spy frame ("function (path:line)") belongs to, by its top-level module."""
    path = frame.rpartition("(")[2].rpartition(":")[0]
    if "site-packages/" in path:
        path = path.split("site-packages/")[1]
    top = path.lstrip("<").split("/")[0].removesuffix(".py")
    if top in sys.stdlib_module_names:
        return f"stdlib {top}"
    if top in ("benchmarks", "example", "app", "users", "call_cost", "live_page"):
        return "the example app and benchmark"
    if path.startswith("flask_convex/connections"):
        return HTTP_CLIENT
    if top == "flask_convex":
        return OWN
    return top


@contextmanager
def sampled(pid: int, *, subprocesses: bool = False) -> Iterator[Counter[str]]:
    """Sample process `pid` (with `subprocesses`, its children too) with py-spy while the
    block runs.

    Yields the samples per library, counted when the block ends. Only samples holding
    the GIL count: the CPU, not the waits.
    """
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp, "profile.txt")
        py_spy = shutil.which("py-spy", path=Path(sys.executable).parent) or "py-spy"
        options = ["--rate", "1000", "--format", "raw", "--output", str(output)]
        options += ["--gil", "--nonblocking"] + (["--subprocesses"] if subprocesses else [])
        spy = subprocess.Popen(
            [py_spy, "record", "--pid", str(pid), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        shares: Counter[str] = Counter()
        try:
            time.sleep(1)  # py-spy attaches
            yield shares
        finally:
            spy.send_signal(signal.SIGINT)
            try:
                _, errors = spy.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
                raise
        if not output.exists():
            raise SystemExit(f"py-spy failed (it needs ptrace permission): {errors.decode()}")
        for line in output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            # --nonblocking reads a running process: now and then a sample is garbage.
            if count.isdigit():
                shares[library_of(stack.split(";")[-1])] += int(count)
