"""The notification receiver of ``bench.fanout``: a bare HTTP/1.1 server that answers 200 at
once and records when each request arrived.

It stands for the subscribers' EHRs, which are not what the benchmark measures, so it costs
as little CPU as an HTTP server can in Python: one asyncio ``Protocol`` per connection on
uvloop, requests parsed by ``httptools`` (the parser uvicorn uses), keep-alive and pipelining
honoured, no framework. A receipt is ``(arrival, path, X-Gateway-Focus, X-Bench-Sent)``:
``arrival`` is ``time.time()`` when the bytes completing the request's head were read from
the socket (taken once per read, before parsing), the header values are empty when absent.

``GET /receipts`` returns the receipts as JSON, ``POST /reset`` forgets them, anything else
is a notification: recorded, answered ``200`` with a two-byte body. One process, one event
loop, so every receipt lands in one list, in arrival order.

Run as ``python -m bench.fanout_receiver --port P`` (started and stopped by ``bench.fanout``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from typing import Any

import httptools

Receipt = tuple[float, str, str, str]

_OK = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\nok")
_OK_CLOSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
             b"connection: close\r\n\r\nok")
_WANTED = {b"x-gateway-focus": 0, b"x-bench-sent": 1}


class Receiver(asyncio.Protocol):
    """One connection: parse requests, record notifications, answer each at once."""

    def __init__(self, receipts: list[Receipt]) -> None:
        self.receipts = receipts
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.now = 0.0
        self._reset_request()

    def _reset_request(self) -> None:
        self.arrived = 0.0
        self.url = b""
        self.values = ["", ""]

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.now = time.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n"
                                 b"connection: close\r\n\r\n")
            self.transport.close()

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset_request()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        index = _WANTED.get(name.lower())
        if index is not None:
            self.values[index] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.arrived = self.now

    def on_message_complete(self) -> None:
        assert self.transport is not None
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        keep_alive = self.parser.should_keep_alive()
        if path == "/receipts":
            body = json.dumps(self.receipts).encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n" % len(body) + body)
        else:
            if path == "/reset":
                self.receipts.clear()
            else:
                self.receipts.append((self.arrived, path, *self.values))  # type: ignore[arg-type]
            self.transport.write(_OK if keep_alive else _OK_CLOSE)
        if not keep_alive:
            self.transport.close()


async def serve(host: str, port: int) -> None:
    receipts: list[Receipt] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Receiver(receipts), host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout_receiver",
                                     description="Bare HTTP receiver recording arrivals "
                                                 "(bench.fanout's notification endpoints).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(options.host, options.port))


if __name__ == "__main__":
    main()
