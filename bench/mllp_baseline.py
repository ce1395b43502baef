"""The bare MLLP server ``bench.adt`` measures beside the gateway.

It frames and answers exactly like the gateway's listener - stdlib asyncio streams, 64 KiB
reads, one framed ACK per <VT>...<FS><CR> frame, written before the next frame is read - but
answers every frame with the same fixed AA without parsing or storing anything. The senders,
message bytes and loop are the same, so gateway/baseline is what the gateway's parsing,
storage, mapping and acknowledgement cost, not what asyncio or the loopback cost.

Run as ``python -m bench.mllp_baseline --port P`` (started and stopped by ``bench.adt``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

END = b"\x1c\x0d"
# Shaped like the gateway's ACK to the sample messages (MSH + MSA, similar length).
ACK = (b"\x0bMSH|^~\\&|GATEWAY|CAREGW|EPIC|NORTH^2.16.840.1.113883.3.9999.1^ISO|"
       b"20240101000000||ACK^A01^ACK|BASELINE-ACK|P|2.5\rMSA|AA|BASELINE\r" + END)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    buffer = b""
    try:
        while data := await reader.read(65536):
            buffer += data
            while (end := buffer.find(END)) >= 0:
                buffer = buffer[end + len(END):]
                writer.write(ACK)
                await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def main(host: str, port: int) -> None:
    server = await asyncio.start_server(serve, host, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.mllp_baseline",
                                     description="Bare asyncio MLLP server answering every "
                                                 "frame with a fixed AA (bench.adt's baseline).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(options.host, options.port))
