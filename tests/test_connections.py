"""The connection pool against a real loopback HTTP server: reuse, reconnects, timeouts, errors."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import select
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpcore
import httpx
import pytest
import respx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from flask_convex import ConvexConnectionError
from flask_convex.client import Call, Transport
from flask_convex.connections import ConnectionPool, _UntilDeadline


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


def https_url_of(server: Server) -> str:
    return url_of(server).replace("http:", "https:")


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


def test_a_trickling_answer_fails_at_the_deadline_not_at_each_read() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        with connection, contextlib.suppress(OSError):
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            # A byte every 50 ms: each read is quick, the whole answer would take 5 s.
            for _ in range(100):
                time.sleep(0.05)
                connection.sendall(b"x")

    threading.Thread(target=serve, daemon=True).start()
    pool = ConnectionPool(timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(httpx.ReadTimeout):
            answer(pool, "http://{}:{}".format(*listener.getsockname()))
    finally:
        listener.close()
    assert 0.29 <= time.monotonic() - started < 2.5


def test_a_request_larger_than_the_socket_buffer_is_sent_whole(
    server: Server, pool: ConnectionPool
) -> None:
    content = json.dumps({"args": "x" * 8_000_000}).encode()
    request = httpcore.Request(b"POST", f"{url_of(server)}/api/query", content=content)
    response = pool.handle_request(request)
    assert json.loads(response.read()) == {"status": "success", "value": 1.0}


def test_without_poll_the_pool_waits_with_select(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on Windows, or under eventlet's monkey-patching, which removes select.poll.
    monkeypatch.delattr(select, "poll")
    pool = ConnectionPool(timeout=0.3)
    assert [query(pool, url_of(server)) for _ in range(2)] == [1.0, 2.0]
    assert server.connections == 1
    server.delay = 2.0
    started = time.monotonic()
    with pytest.raises(ConvexConnectionError, match="did not answer in time"):
        query(pool, url_of(server))
    assert 0.29 <= time.monotonic() - started < 1.5


def tls_pair() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for 127.0.0.1, and a client context trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flask-convex test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_file.write_bytes(pem)
        key_file.write_bytes(key_pem)
        server_side.load_cert_chain(cert_file, key_file)
    return server_side, ssl.create_default_context(cadata=pem.decode())


class BigHandler(Handler):
    """Answers with a body of many TLS records: the answer takes several reads."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.count_lock:
            self.server.requests += 1
        time.sleep(self.server.delay)
        body = json.dumps({"status": "success", "value": "y" * 300_000}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # A client that gave up has gone: nothing to report.
        with contextlib.suppress(OSError):
            self.wfile.write(body)


@pytest.fixture
def tls_server() -> Iterator[tuple[Server, ssl.SSLContext]]:
    server_side, client_side = tls_pair()
    with Server(("127.0.0.1", 0), BigHandler) as running:
        running.socket = server_side.wrap_socket(running.socket, server_side=True)
        thread = threading.Thread(target=running.serve_forever, daemon=True)
        thread.start()
        yield running, client_side
        running.shutdown()
        thread.join()


def test_https_calls_verify_the_server_and_reuse_the_connection(
    tls_server: tuple[Server, ssl.SSLContext],
) -> None:
    server, trusted = tls_server
    pool = ConnectionPool(timeout=5, tls=trusted)
    values = [query(pool, https_url_of(server)) for _ in range(3)]
    assert values == ["y" * 300_000] * 3
    assert server.connections == 1
    pool.close()


def test_an_https_server_the_pool_does_not_trust_is_refused(
    tls_server: tuple[Server, ssl.SSLContext],
) -> None:
    with pytest.raises(ConvexConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        query(ConnectionPool(timeout=5), https_url_of(tls_server[0]))


def test_a_slow_https_answer_fails_after_the_timeout(
    tls_server: tuple[Server, ssl.SSLContext],
) -> None:
    server, trusted = tls_server
    server.delay = 3.0
    started = time.monotonic()
    with pytest.raises(ConvexConnectionError, match="did not answer in time"):
        query(ConnectionPool(timeout=0.3, tls=trusted), https_url_of(server))
    assert 0.29 <= time.monotonic() - started < 2.0


def test_a_large_https_request_is_sent_whole(tls_server: tuple[Server, ssl.SSLContext]) -> None:
    server, trusted = tls_server
    content = json.dumps({"args": "x" * 8_000_000}).encode()
    url = https_url_of(server)
    request = httpcore.Request(b"POST", f"{url}/api/query", content=content)
    response = ConnectionPool(timeout=10, tls=trusted).handle_request(request)
    assert json.loads(response.read())["status"] == "success"


def test_a_tls_handshake_that_never_comes_fails_within_the_timeout() -> None:
    _, trusted = tls_pair()
    # Accepts the connection (the kernel does, from its backlog), never answers the hello.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = "https://{}:{}".format(*silent.getsockname())
        started = time.monotonic()
        with pytest.raises(ConvexConnectionError, match="did not answer in time"):
            query(ConnectionPool(timeout=0.3, tls=trusted), url)
    assert 0.29 <= time.monotonic() - started < 2.0


def test_bytes_tls_has_decrypted_are_read_without_waiting_for_the_socket() -> None:
    server_side, trusted = tls_pair()
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        accepted, _ = listener.accept()
        with server_side.wrap_socket(accepted, server_side=True) as connection:
            connection.recv(65536)
            # One write, one TLS record; then nothing more arrives on the socket.
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            done.wait(5)

    threading.Thread(target=serve, daemon=True).start()
    raw = socket.create_connection(listener.getsockname())
    with listener, trusted.wrap_socket(raw, server_hostname="127.0.0.1") as connection:
        connection.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        connection.setblocking(False)
        reader = _UntilDeadline(connection, time.monotonic() + 2)
        first, rest = bytearray(5), bytearray(4096)
        assert reader.readinto(first) == 5
        # The rest of the record is in TLS's buffer; the socket has nothing to read.
        assert reader.readinto(rest) == 35
        done.set()
    assert bytes(first + rest[:35]).endswith(b"\r\n\r\nok")
