"""The connection pool against a real loopback HTTP server: reuse, reconnects, timeouts, errors."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore
import httpx
import pytest
import respx

from flask_convex import ConvexConnectionError
from flask_convex.client import Transport
from flask_convex.connections import ConnectionPool


class Server(ThreadingHTTPServer):
    """Answers every POST with the number of requests so far; counts the connections it accepted."""

    daemon_threads = True
    connections = 0
    requests = 0
    delay = 0.0
    close_after_answer = False
    drop_before_answer = False
    count_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def setup(self) -> None:
        with self.server.count_lock:
            self.server.connections += 1
        super().setup()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.count_lock:
            self.server.requests += 1
            count = self.server.requests
        if self.server.drop_before_answer:
            self.close_connection = True
            return
        time.sleep(self.server.delay)
        body = json.dumps({"status": "success", "value": float(count)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        # Closes without saying so, as a server dropping idle keep-alive connections does.
        self.close_connection = self.server.close_after_answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    with Server(("127.0.0.1", 0), Handler) as running:
        thread = threading.Thread(target=running.serve_forever, daemon=True)
        thread.start()
        yield running
        running.shutdown()
        thread.join()


@pytest.fixture
def pool() -> Iterator[ConnectionPool]:
    connections = ConnectionPool(timeout=2)
    yield connections
    connections.close()


def url_of(server: Server) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


def query(pool: ConnectionPool, url: str) -> float:
    value: float = Transport(pool, "flask-convex-test").call(url, "query", "t:q", {}, None).unwrap()
    return value


def test_calls_reuse_one_keep_alive_connection(server: Server, pool: ConnectionPool) -> None:
    assert [query(pool, url_of(server)) for _ in range(3)] == [1.0, 2.0, 3.0]
    assert server.connections == 1


def test_concurrent_calls_each_get_a_connection_and_then_share_them(
    server: Server, pool: ConnectionPool
) -> None:
    with ThreadPoolExecutor(4) as threads:
        values = list(threads.map(lambda _: query(pool, url_of(server)), range(40)))
    assert sorted(values) == [float(n) for n in range(1, 41)]
    assert server.connections <= 4


def test_a_connection_the_server_closed_is_replaced(server: Server, pool: ConnectionPool) -> None:
    server.close_after_answer = True
    assert [query(pool, url_of(server)) for _ in range(3)] == [1.0, 2.0, 3.0]
    assert server.connections == 3


def test_idle_connections_expire(server: Server) -> None:
    pool = ConnectionPool(timeout=2, idle_expiry=0)
    query(pool, url_of(server))
    query(pool, url_of(server))
    assert server.connections == 2


def test_a_slow_answer_fails_after_the_timeout(server: Server) -> None:
    server.delay = 1.0
    pool = ConnectionPool(timeout=0.2)
    started = time.monotonic()
    with pytest.raises(ConvexConnectionError, match="did not answer in time"):
        query(pool, url_of(server))
    assert time.monotonic() - started < 0.9


def test_an_unreachable_deployment_is_a_connection_error(pool: ConnectionPool) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(ConvexConnectionError, match="Cannot reach"):
        query(pool, f"http://127.0.0.1:{port}")


def test_a_connection_dropped_before_the_answer_is_retried_once_for_a_query(
    server: Server, pool: ConnectionPool
) -> None:
    server.drop_before_answer = True
    with pytest.raises(ConvexConnectionError, match="Cannot reach"):
        query(pool, url_of(server))
    assert server.requests == 2


def test_the_pool_raises_httpx_errors_and_keeps_working_after_them(
    server: Server, pool: ConnectionPool
) -> None:
    server.drop_before_answer = True
    request = httpcore.Request(b"POST", f"{url_of(server)}/api/query", content=b"{}")
    with pytest.raises(httpx.RemoteProtocolError):
        pool.handle_request(request)
    server.drop_before_answer = False
    assert query(pool, url_of(server)) == 2.0


def test_respx_fakes_the_pool(pool: ConnectionPool) -> None:
    # The pytest plugin registered the pool with respx's default mocker.
    with respx.mock(base_url="http://convex.invalid") as router:
        route = router.post("/api/query").respond(json={"status": "success", "value": 7.0})
        assert query(pool, "http://convex.invalid") == 7.0
    assert route.called
