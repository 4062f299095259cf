"""Keep-alive HTTP/1.1 connections to Convex deployments, each request one write, one read.

httpx's client costs more CPU per call than the network round trip it wraps (its
request, header, cookie and response models), and `http.client` parses every
answer's headers with the `email` package, so calls go through this pool and its
small HTTP/1.1 answer reader instead. It speaks httpcore's interface,
`handle_request(httpcore.Request)`, and raises httpx's exceptions, so respx
fakes it like any httpx transport once flask-convex's pytest plugin has
registered it (`respx_targets`).
"""

from __future__ import annotations

import io
import itertools
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import certifi
import httpcore
import httpx

Origin = tuple[bytes, bytes, int]
"""Scheme, host and port: connections are pooled per origin."""


Model = TypeVar("Model", httpcore.Request, httpcore.Response)


def with_headers(model: Model, headers: list[tuple[bytes, bytes]]) -> Model:
    """`model` holding `headers`, pairs of bytes, as they are.

    Given to httpcore's constructors, headers are checked against typing's ABCs and
    rebuilt pair by pair, which costs more than the rest of a call's request or answer.
    """
    model.headers = headers
    return model


class ConnectionPool:
    """Reuses up to `max_idle` idle connections per origin for `idle_expiry` seconds; thread-safe.

    `timeout` is each request's budget, from connecting to the answer's last byte.
    HTTPS connections verify the server with `tls` (default: certifi's CA bundle).
    """

    def __init__(
        self,
        *,
        timeout: float,
        max_idle: int = 32,
        idle_expiry: float = 30.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_idle = max_idle
        self.idle_expiry = idle_expiry
        self.is_closed = False
        self._idle: dict[Origin, list[tuple[float, socket.socket]]] = {}
        self._lock = threading.Lock()
        self._tls = tls

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        """Send `request` on an idle connection of its origin, or a new one; read the whole answer.

        Raises httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout or
        httpx.RemoteProtocolError.
        """
        url = request.url
        default_port = 443 if url.scheme == b"https" else 80
        origin = (url.scheme, url.host, url.port or default_port)
        deadline = time.monotonic() + self.timeout
        connection = self._take(origin) or self._connect(origin, deadline)
        body = b"".join(request.stream)  # type: ignore[arg-type]
        host = url.host if origin[2] == default_port else b"%s:%d" % (url.host, origin[2])
        head = [b"%s %s HTTP/1.1" % (request.method, url.target), b"Host: " + host]
        head += [b"%s: %s" % header for header in request.headers]
        head += [b"Content-Length: %d" % len(body), b"", body]
        try:
            # One write: a request split in two costs a second system call and packet.
            _send_all(connection, b"\r\n".join(head), deadline)
            answer = read_answer(io.BufferedReader(_UntilDeadline(connection, deadline), 65536))
        except TimeoutError as error:
            connection.close()
            raise httpx.ReadTimeout(f"no answer within {self.timeout} s") from error
        except (OSError, ValueError) as error:
            connection.close()
            raise httpx.RemoteProtocolError(f"the connection failed: {error!r}") from error
        if answer.keep_alive:
            self._give_back(origin, connection)
        else:
            connection.close()
        response = httpcore.Response(
            answer.status, content=answer.body, extensions={"reason_phrase": answer.reason}
        )
        return with_headers(response, answer.headers)

    def close(self) -> None:
        """Close every idle connection; the pool opens new ones if used again."""
        with self._lock:
            idle, self._idle = self._idle, {}
            self.is_closed = True
        for connections in idle.values():
            for _, connection in connections:
                connection.close()

    def _take(self, origin: Origin) -> socket.socket | None:
        now = time.monotonic()
        while True:
            with self._lock:
                connections = self._idle.get(origin)
                if not connections:
                    return None
                since, connection = connections.pop()
            # A readable idle socket was closed by the server (or sent what nobody asked for).
            if now - since < self.idle_expiry and not _ready(connection, 0):
                return connection
            connection.close()

    def _give_back(self, origin: Origin, connection: socket.socket) -> None:
        with self._lock:
            connections = self._idle.setdefault(origin, [])
            if len(connections) < self.max_idle:
                connections.append((time.monotonic(), connection))
                return
        connection.close()

    def _connect(self, origin: Origin, deadline: float) -> socket.socket:
        scheme, host, port = origin
        name = host.decode("ascii")
        try:
            connection = socket.create_connection(
                (name, port), timeout=max(deadline - time.monotonic(), 0.001)
            )
            if scheme == b"https":
                # The handshake gets what connecting left of the budget, not all of it again.
                connection.settimeout(max(deadline - time.monotonic(), 0.001))
                connection = self._tls_context().wrap_socket(connection, server_hostname=name)
        except TimeoutError as error:
            raise httpx.ConnectTimeout(f"no connection within {self.timeout} s") from error
        except OSError as error:
            raise httpx.ConnectError(str(error)) from error
        if time.monotonic() >= deadline:
            # Nothing is sent that could only time out: a mutation would be left "may have run".
            connection.close()
            raise httpx.ConnectTimeout(f"no connection within {self.timeout} s")
        # Small requests go out at once rather than waiting for an acknowledgement.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Non-blocking for good, each wait bounded by the request's deadline (`_wait`): a
        # socket timeout would cost a system call to set before each read, and another
        # to wait before each write that would not have waited.
        connection.setblocking(False)
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        # Building a context loads the CA bundle: once per pool, not per connection.
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=certifi.where())
        return self._tls


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer read whole, and whether its connection can carry another request."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool


def read_answer(reader: io.BufferedReader) -> Answer:
    """Read one HTTP/1.x answer to a POST; ValueError if it is not one, OSError if cut short.

    Informational (1xx) answers are skipped. The body is framed by chunked
    transfer coding, Content-Length, or the end of the connection. Status and
    header lines are bounded as `http.client` bounds them.
    """
    status = 100
    while 100 <= status < 200:
        version, status, reason = _status_line(_line(reader))
        headers, fields = _headers(reader)
    coding = fields.get(b"transfer-encoding", b"")
    length = fields.get(b"content-length")
    until_close = False
    if status in (204, 304):
        body = b""
    elif coding.rstrip().lower().endswith(b"chunked"):
        body = _chunked(reader)
    elif length is not None:
        size = int(length)
        if size < 0:
            raise ValueError(f"negative Content-Length {size}")
        body = _exactly(reader, size)
    else:
        body, until_close = reader.read(), True
    connection = fields.get(b"connection", b"").lower()
    persistent = (
        b"keep-alive" in connection if version == b"HTTP/1.0" else b"close" not in connection
    )
    return Answer(status, reason, headers, body, persistent and not until_close)


_MAX_LINE: Final = 65536
_MAX_HEADERS: Final = 100


def _line(reader: io.BufferedReader) -> bytes:
    line = reader.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise ValueError("an answer line is longer than 64 KiB")
    if not line.endswith(b"\n"):
        raise ConnectionResetError("the server closed the connection mid-answer")
    return line


def _status_line(line: bytes) -> tuple[bytes, int, bytes]:
    version, _, rest = line.rstrip(b"\r\n").partition(b" ")
    code, _, reason = rest.partition(b" ")
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ValueError(f"not an HTTP/1.x status line: {line[:100]!r}")
    return version, int(code), reason.strip()


def _headers(reader: io.BufferedReader) -> tuple[list[tuple[bytes, bytes]], dict[bytes, bytes]]:
    """The header lines as (name, value) pairs, and by lower-cased name (repeats joined)."""
    lines: list[bytes] = []
    for count in itertools.count():
        line = _line(reader)
        if line in (b"\r\n", b"\n"):
            break
        if count == _MAX_HEADERS:
            raise ValueError(f"the answer has more than {_MAX_HEADERS} header lines")
        if line[:1] in (b" ", b"\t") and lines:
            # An obsolete line folding continues the previous field: RFC 9112 section 5.2.
            lines[-1] = lines[-1].rstrip() + b" " + line.strip()
        else:
            lines.append(line)
    headers: list[tuple[bytes, bytes]] = []
    fields: dict[bytes, bytes] = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise ValueError(f"not a header line: {line[:100]!r}")
        value = value.strip()
        headers.append((name, value))
        key = name.lower()
        if key == b"content-length" and fields.get(key, value) != value:
            raise ValueError("the answer has two different Content-Length headers")
        fields[key] = (
            fields[key] + b", " + value if key in fields and key != b"content-length" else value
        )
    return headers, fields


def _chunked(reader: io.BufferedReader) -> bytes:
    chunks = []
    while size := _chunk_size(_line(reader)):
        chunks.append(_exactly(reader, size))
        if _exactly(reader, 2) != b"\r\n":
            raise ValueError("a chunk does not end with CRLF")
    # Trailer fields, read past: nothing a Convex answer needs.
    _headers(reader)
    return b"".join(chunks)


def _chunk_size(line: bytes) -> int:
    digits = line.partition(b";")[0].strip()
    if not digits or digits.strip(b"0123456789abcdefABCDEF"):
        raise ValueError(f"not a chunk size: {line[:100]!r}")
    return int(digits, 16)


_READ_STEP: Final = 1 << 20


def _exactly(reader: io.BufferedReader, size: int) -> bytes:
    # In steps: `read(size)` allocates `size` bytes at once, and the size comes off the wire.
    parts: list[bytes] = []
    left = size
    while left and (part := reader.read(min(left, _READ_STEP))):
        parts.append(part)
        left -= len(part)
    data = b"".join(parts)
    if len(data) < size:
        raise ConnectionResetError(
            f"the server closed the connection {size - len(data)} bytes short"
        )
    return data


class _UntilDeadline(io.RawIOBase):
    """A non-blocking socket's answer, read so that the whole of it, not each read, ends
    by `deadline`: a server trickling a byte at a time cannot hold the call longer.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        sock = self._sock
        # TLS may hold decrypted bytes that the socket no longer shows as readable. Asked
        # of the object, not its class: gevent swaps in an SSL socket class of its own.
        pending = getattr(sock, "pending", None)
        if not (pending and pending()):
            _wait(sock, self._deadline)
        while True:
            try:
                return sock.recv_into(buffer)
            except (BlockingIOError, ssl.SSLWantReadError):
                _wait(sock, self._deadline)
            except ssl.SSLWantWriteError:
                _wait(sock, self._deadline, writing=True)


def _send_all(sock: socket.socket, data: bytes, deadline: float) -> None:
    """Write all of `data` to a non-blocking socket by `deadline` (TimeoutError if not)."""
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except (BlockingIOError, ssl.SSLWantWriteError):
            _wait(sock, deadline, writing=True)
        except ssl.SSLWantReadError:
            _wait(sock, deadline)


def _wait(sock: socket.socket, deadline: float, *, writing: bool = False) -> None:
    """Wait until `sock` can be read (`writing`: written) or has an error to report;
    TimeoutError at `deadline`."""
    left = deadline - time.monotonic()
    if left <= 0 or not _ready(sock, left, writing=writing):
        raise TimeoutError("the call's deadline passed")


def _ready(sock: socket.socket, seconds: float, *, writing: bool = False) -> bool:
    # poll(), as select() cannot watch a descriptor numbered 1024 or more; select() where
    # there is no poll(): on Windows, and under eventlet, which removes it when patching
    # (looked up on each call, since patching may come after this module is imported).
    poll = getattr(select, "poll", None)
    if poll is None:
        watched = [sock]
        readable, writable, _ = select.select(
            [] if writing else watched, watched if writing else [], [], seconds
        )
        return bool(readable or writable)
    poller = poll()
    poller.register(sock, select.POLLOUT if writing else select.POLLIN)
    return bool(poller.poll(seconds * 1000))


def respx_targets() -> list[str]:
    """What respx's default (httpcore) mocker must patch to fake flask-convex's calls."""
    return [f"{ConnectionPool.__module__}.{ConnectionPool.__qualname__}"]
