"""Real HTTP for tests: `serve` a WSGI app (shared with the benchmarks), POST chunked bodies."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit


def post_chunked(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST `body` with Transfer-Encoding: chunked (no Content-Length); the status and body."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        chunks = (body[start : start + 8192] for start in range(0, len(body), 8192))
        connection.request("POST", parts.path, body=chunks, headers=headers, encode_chunked=True)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()
