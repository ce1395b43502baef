"""The MLLP load generator of ``bench.adt``, run as its own process so its CPU is not the
server's and can be accounted for separately.

``python -m bench.mllp_sender MANIFEST`` reads a JSON manifest (host, port, ACK timeout,
duration bound, and per connection a warm-up file and a measured file of framed messages),
then talks to ``bench.adt`` over stdin/stdout so that only the measured window is timed:

1. opens every connection and sends the warm-up messages (not measured), prints ``ready``;
2. waits for ``go`` on stdin, sends the measured messages (over and over until
   ``min_seconds`` have passed, for the baseline only), prints ``done`` when the last
   connection has its last ACK (or the duration bound is reached);
3. writes the results to the manifest's ``output`` and exits.

Each connection is an HL7 v2 sender in original mode: one message, then wait for its ACK,
then the next. Latency is from just after the whole frame was handed to the kernel (the
last byte sent) to the ACK's end block received. An ACK other than AA, a wrong MSA-2, a
timeout or a closed connection is an error; after a timeout or a closed connection the
connection is opened again (as a real sender would) and the next message follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VT, END = b"\x0b", b"\x1c\x0d"


def split_frames(data: bytes) -> list[bytes]:
    """The framed messages of a file written by ``bench.adt`` (each <VT>...<FS><CR>)."""
    return [chunk + END for chunk in data.split(END) if chunk.strip()]


def control_id(framed: bytes) -> str:
    """MSH-10 of a framed message (the ACK's MSA-2 must repeat it)."""
    msh = framed.lstrip(VT).split(b"\r", 1)[0]
    fields = msh.split(msh[3:4])
    return fields[9].decode() if len(fields) > 9 else ""


def read_ack(payload: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-2) of an ACK payload; ("", "") when it has no MSA segment."""
    separator = payload[3:4] or b"|"
    for segment in payload.split(b"\r"):
        if segment.startswith(b"MSA"):
            fields = segment.split(separator)
            return ((fields[1] if len(fields) > 1 else b"").decode(errors="replace"),
                    (fields[2] if len(fields) > 2 else b"").decode(errors="replace"))
    return "", ""


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values (exact: every latency is kept)."""
    if not ordered:
        return float("nan")
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Tally:
    """What one phase (warm-up or measured) saw across all connections."""

    sent: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    stopped_by_time: bool = False

    def error(self, kind: str, sample: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < 5:
            self.samples.append(sample[:300])


class Connection:
    def __init__(self, host: str, port: int, timeout: float, check_ids: bool) -> None:
        self.host, self.port, self.timeout, self.check_ids = host, port, timeout, check_ids
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def send_all(self, messages: list[bytes], tally: Tally, deadline: float | None,
                       repeat_until: float = 0.0) -> None:
        """Send ``messages`` in order; again from the start while ``repeat_until`` (a
        monotonic time) is ahead - only for a server that stores nothing, so a phase too
        short to time well can be stretched without sending a visit twice to the gateway."""
        while messages:
            for message in messages:
                if deadline is not None and time.monotonic() >= deadline:
                    tally.stopped_by_time = True
                    return
                await self.send(message, tally)
            if time.monotonic() >= repeat_until:
                return

    async def send(self, message: bytes, tally: Tally) -> None:
        expected = control_id(message)
        try:
            if self.writer is None:
                await self.open()
            assert self.reader is not None and self.writer is not None
            async with asyncio.timeout(self.timeout):
                self.writer.write(message)
                started = time.perf_counter()
                tally.sent += 1
                await self.writer.drain()
                answer = await self.reader.readuntil(END)
                elapsed = time.perf_counter() - started
        except TimeoutError:
            tally.error("timeout", f"{expected}: no ACK within {self.timeout:g} s")
            await self.close()
            return
        except (ConnectionError, OSError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as error:
            tally.error("connection", f"{expected}: {type(error).__name__}: {error}")
            await self.close()
            return
        payload = answer[answer.rfind(VT) + 1:-len(END)]
        code, acked = read_ack(payload)
        tally.latencies.append(elapsed * 1000.0)
        tally.codes[code or "none"] += 1
        text = payload.decode(errors="replace").replace("\r", "\\r")
        if code != "AA":
            tally.error(code or "no MSA", f"{expected}: {text}")
        elif self.check_ids and acked != expected:
            tally.error("wrong MSA-2", f"{expected}: {text}")


def summary(tally: Tally, wall: float, cpu: float) -> dict[str, Any]:
    ordered = sorted(tally.latencies)
    acked = tally.codes.get("AA", 0)
    return {
        "sent": tally.sent, "acks": dict(tally.codes), "errors": dict(tally.errors),
        "error_samples": tally.samples, "wall_s": wall, "sender_cpu_s": cpu,
        "aa_per_s": acked / wall if wall else 0.0,
        "stopped_by": "time" if tally.stopped_by_time else "count",
        "latency_ms": {"p50": percentile(ordered, 0.50), "p90": percentile(ordered, 0.90),
                       "p99": percentile(ordered, 0.99),
                       "max": ordered[-1] if ordered else float("nan"),
                       "mean": sum(ordered) / len(ordered) if ordered else float("nan")},
    }


def say(word: str) -> None:
    sys.stdout.write(word + "\n")
    sys.stdout.flush()


async def run(manifest: dict[str, Any]) -> dict[str, Any]:
    connections = [Connection(manifest["host"], manifest["port"], manifest["timeout"],
                              manifest["check_ids"]) for _ in manifest["connections"]]
    warmups = [split_frames(Path(c["warmup"]).read_bytes()) for c in manifest["connections"]]
    measured = [split_frames(Path(c["measured"]).read_bytes())
                for c in manifest["connections"]]
    for connection in connections:
        await connection.open()
    warm = Tally()
    await asyncio.gather(*(c.send_all(m, warm, None) for c, m in zip(connections, warmups,
                                                                      strict=True)))
    say("ready")
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() != "go":
        raise SystemExit(f"expected 'go', got {line!r}")
    tally = Tally()
    cpu_before, started = time.process_time(), time.perf_counter()
    deadline = time.monotonic() + manifest["duration"]
    repeat_until = time.monotonic() + manifest.get("min_seconds", 0.0)
    await asyncio.gather(*(c.send_all(m, tally, deadline, repeat_until)
                           for c, m in zip(connections, measured, strict=True)))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    say("done")
    for connection in connections:
        await connection.close()
    return {"warmup": summary(warm, 0.0, 0.0), "measured": summary(tally, wall, cpu),
            "loop": manifest.get("loop", "asyncio")}


def main() -> None:
    manifest = json.loads(Path(sys.argv[1]).read_text())
    if manifest.get("loop") == "uvloop":
        import uvloop  # the lighter loop leaves more of the 2 cores to the server

        result = uvloop.run(run(manifest))
    else:
        result = asyncio.run(run(manifest))
    Path(manifest["output"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
