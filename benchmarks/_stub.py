"""A stand-in Convex deployment on 127.0.0.1 that answers the HTTP API with a fixed value.

Benchmarks run it in its own process (`stub_process`), so it does not compete with
the measured code for the GIL; tests run it on a thread (`stub_thread`) and read
what it saw. Run `python -m benchmarks._stub [delay [value]]` to serve until killed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

VALUE = b'[{"_id":"k57a","text":"Buy milk","isCompleted":false,"_creationTime":1.7e12}]'


class Stub:
    """The server: a fixed answer after `delay` seconds, counting API requests and connections.

    With `trickle`, the answer goes out one byte every `trickle` seconds, headers included.
    """

    def __init__(self, delay: float = 0.0, value: bytes = VALUE, trickle: float = 0.0) -> None:
        self.delay = delay
        self.trickle = trickle
        self._result = b'{"status":"success","value":' + value + b"}"
        self.requests = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self) -> str:
        """Listen on a free port and return the deployment URL."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        assert self._server is not None
        self._server.close()
        for writer in self._handlers.values():
            writer.close()
        await asyncio.gather(*self._handlers)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers[handler] = writer
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                length = 0
                for line in header_lines:
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                if self.delay:
                    await asyncio.sleep(self.delay)
                payload = self._answer(request_line.split(" ")[1], body)
                await self._write(
                    writer,
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload),
                )
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            del self._handlers[handler]
            writer.close()

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if not self.trickle:
            writer.write(data)
            await writer.drain()
            return
        for index in range(len(data)):
            if writer.is_closing():
                return
            writer.write(data[index : index + 1])
            await writer.drain()
            await asyncio.sleep(self.trickle)

    def _answer(self, path: str, body: bytes) -> bytes:
        if path == "/stats":
            return json.dumps({"requests": self.requests, "connections": self.connections}).encode()
        self.requests += 1
        if path.endswith("/api/query_batch"):
            count = len(json.loads(body)["queries"])
            return b'{"results":[' + b",".join([self._result] * count) + b"]}"
        return self._result


@contextmanager
def stub_thread(
    delay: float = 0.0, value: bytes = VALUE, trickle: float = 0.0
) -> Iterator[tuple[Stub, str]]:
    """Run a stub on a daemon thread of this process; yields it and its URL."""
    stub = Stub(delay, value, trickle)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    url = asyncio.run_coroutine_threadsafe(stub.start(), loop).result(timeout=10)
    try:
        yield stub, url
    finally:
        asyncio.run_coroutine_threadsafe(stub.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@contextmanager
def stub_process(delay: float = 0.0, value: bytes = VALUE) -> Iterator[str]:
    """Run a stub in a child process; yields its URL (GET <url>/stats for its counts)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._stub", str(delay), value.decode()],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        yield child.stdout.readline().strip()
    finally:
        child.terminate()
        child.wait(timeout=10)


async def _serve_forever(delay: float, value: bytes) -> None:
    print(await Stub(delay, value).start(), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    asyncio.run(_serve_forever(delay, sys.argv[2].encode() if len(sys.argv) > 2 else VALUE))
