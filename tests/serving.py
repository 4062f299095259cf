"""A WSGI app on a real HTTP server in a thread, for tests needing real HTTP (chunked, browsers)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from werkzeug.serving import make_server


@contextmanager
def serve(app: Callable[..., Any]) -> Iterator[str]:
    """Serve a WSGI app on a free port in a thread, giving its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


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
