"""Keep-alive HTTP/1.1 connections to Convex deployments, answers read by the standard library.

httpx's client costs more CPU per call than the network round trip it wraps (its
request, header, cookie and response models), so calls go through this pool
instead. It speaks httpcore's interface, `handle_request(httpcore.Request)`, and
raises httpx's exceptions, so respx fakes it like any httpx transport once
flask-convex's pytest plugin has registered it (`respx_targets`).
"""

from __future__ import annotations

import http.client
import io
import select
import socket
import ssl
import threading
import time
from typing import Any

import certifi
import httpcore
import httpx

Origin = tuple[bytes, bytes, int]
"""Scheme, host and port: connections are pooled per origin."""


class ConnectionPool:
    """Reuses up to `max_idle` idle connections per origin for `idle_expiry` seconds; thread-safe.

    `timeout` is each request's budget: connecting gets it, then sending and each read
    of the answer get what is left of it when the request is written.
    """

    def __init__(self, *, timeout: float, max_idle: int = 32, idle_expiry: float = 30.0) -> None:
        self.timeout = timeout
        self.max_idle = max_idle
        self.idle_expiry = idle_expiry
        self.is_closed = False
        self._idle: dict[Origin, list[tuple[float, socket.socket]]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

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
            connection.settimeout(max(deadline - time.monotonic(), 0.001))
            # One write: a request split in two costs a second system call and packet.
            connection.sendall(b"\r\n".join(head))
            reader = _UntilDeadline(connection, deadline)
            response = http.client.HTTPResponse(reader, method=request.method.decode())  # type: ignore[arg-type]
            response.begin()
            content = response.read()
        except TimeoutError as error:
            connection.close()
            raise httpx.ReadTimeout(f"no answer within {self.timeout} s") from error
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise httpx.RemoteProtocolError(f"the connection failed: {error!r}") from error
        if response.will_close:
            connection.close()
        else:
            self._give_back(origin, connection)
        return httpcore.Response(
            response.status,
            headers=response.getheaders(),
            content=content,
            extensions={"reason_phrase": response.reason.encode("latin-1")},
        )

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
            if now - since < self.idle_expiry and not _readable(connection):
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
                connection = self._tls_context().wrap_socket(connection, server_hostname=name)
        except TimeoutError as error:
            raise httpx.ConnectTimeout(f"no connection within {self.timeout} s") from error
        except OSError as error:
            raise httpx.ConnectError(str(error)) from error
        # Small requests go out at once rather than waiting for an acknowledgement.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        # Building a context loads the CA bundle: once per pool, not per connection.
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=certifi.where())
        return self._tls


class _UntilDeadline(io.RawIOBase):
    """A socket's answer, read so that the whole of it, not each read, ends by `deadline`.

    A socket timeout bounds one read: a server trickling a byte at a time would hold
    the call for as long as it likes. `http.client` reads through `makefile()`.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(self)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the call's deadline passed")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


def _readable(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def respx_targets() -> list[str]:
    """What respx's default (httpcore) mocker must patch to fake flask-convex's calls."""
    return [f"{ConnectionPool.__module__}.{ConnectionPool.__qualname__}"]
