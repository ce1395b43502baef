"""MLLP: the Minimal Lower Layer Protocol framing of HL7 v2 over TCP (HL7 v2.5.1
Implementation Guide: Transport Specification MLLP, release 2): <VT> message <FS><CR>.

``FrameDecoder`` only splits bytes into frames (tested with raw bytes); the asyncio server
hands each frame to a handler running in a worker thread (the database work) and writes
the ACK back framed, one connection per sender, many at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

START, END, CR = b"\x0b", b"\x1c", b"\x0d"
MAX_FRAME = 16 * 1024 * 1024

log = logging.getLogger("gateway.mllp")


def frame(payload: bytes) -> bytes:
    return START + payload + END + CR


class FrameError(ValueError):
    """Bytes that cannot be a frame (data outside a frame, or a frame past the limit)."""


@dataclass(frozen=True)
class Frame:
    """One payload; ``truncated`` when a new start block (or the end of the stream) came
    before its end block, so the sender gets an AR and the bytes are still kept."""

    payload: bytes
    truncated: bool = False


class FrameDecoder:
    """Incremental MLLP decoder: ``feed`` bytes, get the frames completed so far.

    Bytes outside a frame are noise and are dropped (counted in ``discarded``); a frame ends
    at <FS><CR> (a lone <FS> followed by data stays part of it, as python-hl7's reader
    does); a <VT> inside a frame starts a new one and ends the old one as truncated.
    ``close`` returns what was left of an unfinished frame at the end of the stream.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._in_frame = False
        self.max_frame = max_frame
        self.discarded = 0

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        self._buffer += data
        while True:
            if not self._in_frame:
                start = self._buffer.find(START)
                if start < 0:
                    self.discarded += len(self._buffer.strip(b"\r\n"))
                    self._buffer.clear()
                    return frames
                self.discarded += len(bytes(self._buffer[:start]).strip(b"\r\n"))
                del self._buffer[:start + 1]
                self._in_frame = True
            end = self._buffer.find(END + CR)
            restart = self._buffer.find(START)
            if restart >= 0 and (end < 0 or restart < end):
                frames.append(Frame(bytes(self._buffer[:restart]), truncated=True))
                del self._buffer[:restart]
                self._in_frame = False
                continue
            if end < 0:
                if len(self._buffer) > self.max_frame:
                    self._buffer.clear()
                    self._in_frame = False
                    raise FrameError(f"MLLP frame larger than {self.max_frame} bytes")
                return frames
            if end > self.max_frame:  # a whole frame past the limit, read at once
                self._buffer.clear()
                self._in_frame = False
                raise FrameError(f"MLLP frame larger than {self.max_frame} bytes")
            frames.append(Frame(bytes(self._buffer[:end])))
            del self._buffer[:end + 2]
            self._in_frame = False

    def close(self) -> Frame | None:
        """The unfinished frame at end of stream, if any (truncated)."""
        if not self._in_frame:
            return None
        left = Frame(bytes(self._buffer), truncated=True)
        self._buffer.clear()
        self._in_frame = False
        return left


Handler = Callable[[bytes, bool], bytes | None]


class MllpServer:
    """An asyncio MLLP listener; ``handler(payload, truncated) -> ACK payload or None``
    runs in a thread so the event loop keeps serving other connections meanwhile.

    At most ``concurrency`` messages are handled at once, in a pool of that many threads.
    The handler parses and maps in its thread and leaves the database work to the store's
    writer, which commits the messages handled at the same moment together (group commit):
    the more connections send at once, the fewer commits per message.
    """

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 2575,
                 max_frame: int = MAX_FRAME, concurrency: int = 16) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.max_frame = max_frame
        self._server: asyncio.Server | None = None
        self._pool = ThreadPoolExecutor(max_workers=concurrency,
                                        thread_name_prefix="mllp-handler")

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sockets = self._server.sockets or ()
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("MLLP listening on %s:%s", self.host, self.port)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._pool.shutdown(wait=False)

    async def _handle(self, payload: bytes, truncated: bool) -> bytes | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.handler, payload, truncated)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder(self.max_frame)
        peer = writer.get_extra_info("peername")
        try:
            while data := await reader.read(65536):
                for item in decoder.feed(data):
                    reply = await self._handle(item.payload, item.truncated)
                    if reply is not None:
                        writer.write(frame(reply))
                        await writer.drain()
            left = decoder.close()
            if left is not None and left.payload.strip():
                log.warning("MLLP %s closed inside a frame; the partial message is kept as "
                            "rejected", peer)
                await self._handle(left.payload, True)
        except FrameError as error:
            log.warning("MLLP %s: %s; closing", peer, error)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # e.g. the database is gone: no ACK, so the sender will resend
            log.exception("MLLP %s: message could not be handled; closing", peer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
