"""The SMTP ingest baseline: a minimal aiosmtpd server that makes every message durable.

``python3 bench/baseline_smtpd.py --port PORT --dir DIR`` accepts any sender and
recipient on 127.0.0.1:PORT; after DATA it writes the message to a new file in
DIR, fsyncs the file and the directory (in a worker thread, as mailgw does its
blocking I/O), and only then answers ``250``.  It prints ``listening on
127.0.0.1:PORT`` once it accepts connections and exits cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

_counter = itertools.count()


def write_durable(directory: Path, data: bytes) -> None:
    path = directory / f"{os.getpid()}.{next(_counter)}.eml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class DurableHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data: Any = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        await asyncio.to_thread(write_durable, self.directory, data)
        return "250 OK: on disk"


async def serve(port: int, directory: Path) -> None:
    loop = asyncio.get_running_loop()
    handler = DurableHandler(directory)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="baseline.bench", data_size_limit=64 * 1024 * 1024),
        "127.0.0.1",
        port,
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args.port, args.dir))


if __name__ == "__main__":
    main()
