"""The connection pool against a real loopback HTTP server: reuse, reconnects, timeouts, errors."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore
import httpx
import pytest
import respx

from flask_convex import ConvexConnectionError
from flask_convex.client import Call, Transport
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
    transport = Transport(pool, "flask-convex-test")
    value: float = transport.call(Call(url, "t:q", {}, "{}"), "query", None).unwrap()
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


class Scripted:
    """A raw TCP server answering each request with the next scripted bytes.

    It closes the connection after an answer ending with b"<close>" (sent as is).
    """

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            connection, _ = self._listener.accept()
            self.connections += 1
            with connection:
                while self.answers:
                    if not connection.recv(65536):
                        break
                    answer = self.answers.pop(0)
                    connection.sendall(answer)
                    if answer.endswith(b"<close>"):
                        break

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    servers: list[Scripted] = []

    def start(*answers: bytes) -> Scripted:
        servers.append(Scripted(list(answers)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def answer(pool: ConnectionPool, url: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    response = pool.handle_request(httpcore.Request(b"POST", f"{url}/api/query", content=b"{}"))
    return response.status, response.read(), response.headers


def test_a_chunked_answer_is_read_whole_and_the_connection_kept(
    scripted: Callable[..., Scripted], pool: ConnectionPool
) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n  and 2\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1A\r\n, a chunk of 26 bytes here\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    server = scripted(chunked, b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
    assert answer(pool, server.url) == (
        200,
        b"hello, a chunk of 26 bytes here",
        [(b"Transfer-Encoding", b"chunked"), (b"X-A", b"1 and 2")],
    )
    assert answer(pool, server.url)[:2] == (201, b"ok")
    assert server.connections == 1


def test_informational_answers_are_skipped(
    scripted: Callable[..., Scripted], pool: ConnectionPool
) -> None:
    server = scripted(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
    assert answer(pool, server.url)[:2] == (200, b"x")


@pytest.mark.parametrize(
    "closing",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\n\r\nx<close>",
    ],
    ids=["connection-close", "http-1.0", "until-close"],
)
def test_an_answer_that_ends_its_connection_is_read_and_the_next_call_reconnects(
    scripted: Callable[..., Scripted], pool: ConnectionPool, closing: bytes
) -> None:
    server = scripted(closing, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny")
    assert answer(pool, server.url)[1] in (b"x", b"x<close>")
    assert answer(pool, server.url)[1] == b"y"
    assert server.connections == 2


def test_an_http_1_0_keep_alive_answer_keeps_its_connection(
    scripted: Callable[..., Scripted], pool: ConnectionPool
) -> None:
    keep = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx"
    server = scripted(keep, keep)
    assert [answer(pool, server.url)[1] for _ in range(2)] == [b"x", b"x"]
    assert server.connections == 1


@pytest.mark.parametrize(
    "broken",
    [
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded: header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nshort<close>",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"y" * 65536 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n<close>",
        # Sizes no memory could hold, declared by a server that then sends two bytes.
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\nxx<close>",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFF\r\nxx<close>",
    ],
)
def test_a_malformed_answer_is_a_protocol_error(
    scripted: Callable[..., Scripted], pool: ConnectionPool, broken: bytes
) -> None:
    server = scripted(broken)
    with pytest.raises(httpx.RemoteProtocolError):
        answer(pool, server.url)
