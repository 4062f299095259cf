"""A bare Node HTTP server, the baseline the local deployment's benchmarks compare against."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def bare_node(script: str) -> Iterator[str]:
    """Runs `script` (it prints "ready at <url>" once it listens) in Node; yields its URL."""
    node = shutil.which("node")
    assert node is not None, "node is required"
    with subprocess.Popen([node, "-e", script], stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            match = re.search(r"http://\S+", server.stdout.readline())
            assert match is not None, "the bare Node server did not start"
            yield match.group(0)
        finally:
            server.terminate()
