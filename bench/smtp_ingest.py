"""SMTP ingest benchmark: mailgw against a minimal durable aiosmtpd baseline.

Run: ``python3 bench/smtp_ingest.py`` (``--quick`` for a smoke run).

Theory of operation
-------------------
Two servers run side by side on loopback for the whole run:

(a) the baseline, ``bench/baseline_smtpd.py``: aiosmtpd with a handler that
    writes each message to a file and fsyncs file and directory before ``250``;
(b) mailgw, ``python3 -m mailgw --config <tmp>/mailgw.yaml serve`` with one
    ``smtp`` listener (``tls: none``, ``trusted: true``), domain
    ``example.org`` and one user ``bench`` (``mailgw user add bench``, password
    from ``$MAILGW_PASSWORD``); every message goes to ``bench@example.org``.

Each round sends N messages of 4 KiB (default 2000) from 20 concurrent
clients (aiosmtplib on one event loop when it is installed, else smtplib in
20 threads), each client one connection with N/20 transactions in a row, to
each server in turn (the order alternates between rounds).  A round's figure
is messages per second from the first connection to the last ``250``; the
ratio mailgw/baseline is computed per round and the median over the rounds
is reported against the target (>= 0.8): runs on a shared 2-core machine vary
by more than the difference, so only ratios from the same run are compared.
After each round the number of files on disk is checked.
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    LOOPBACK,
    READY_TIMEOUT,
    BenchError,
    MailgwServer,
    count_files,
    finish_workdir,
    free_port,
    machine_line,
    print_medians,
    report_ratio,
    round_order,
    stop_process,
    tail,
    wait_port,
)

TARGET = 0.8
CLIENTS = 20
MESSAGE_SIZE = 4096
SENDER = "load@remote.test"
RECIPIENT = "bench@example.org"
HERE = Path(__file__).resolve().parent

aiosmtplib: Any
try:
    import aiosmtplib
except ImportError:  # pragma: no cover - depends on the machine
    aiosmtplib = None


def make_message(n: int, size: int = MESSAGE_SIZE) -> bytes:
    head = (
        f"From: Load <{SENDER}>\r\nTo: Bench <{RECIPIENT}>\r\n"
        f"Subject: ingest {n}\r\nMessage-ID: <ingest-{n}-{time.time_ns()}@remote.test>\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog; 0123456789 abcdefghij.\r\n"
    body = (line * (size // len(line) + 1))[: max(0, size - len(head) - 2)]
    return head + body + b"\r\n"


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# --- load generators -------------------------------------------------------------------------


async def _aio_client(port: int, count: int, first: int) -> None:
    assert aiosmtplib is not None
    smtp = aiosmtplib.SMTP(hostname=LOOPBACK, port=port, start_tls=False, timeout=120)
    await smtp.connect()
    try:
        for i in range(count):
            await smtp.sendmail(SENDER, [RECIPIENT], make_message(first + i))
    finally:
        await smtp.quit()


async def _aio_load(port: int, total: int) -> None:
    counts = split(total, CLIENTS)
    starts = [sum(counts[:i]) for i in range(CLIENTS)]
    await asyncio.gather(*(_aio_client(port, c, s) for c, s in zip(counts, starts, strict=True)))


def aio_load(port: int, total: int) -> None:
    asyncio.run(_aio_load(port, total))


def thread_load(port: int, total: int) -> None:
    errors: list[BaseException] = []
    counts = split(total, CLIENTS)

    def client(count: int, first: int) -> None:
        try:
            with smtplib.SMTP(LOOPBACK, port, timeout=120) as smtp:
                for i in range(count):
                    smtp.sendmail(SENDER, [RECIPIENT], make_message(first + i))
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    threads = [
        threading.Thread(target=client, args=(c, sum(counts[:i]))) for i, c in enumerate(counts)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise BenchError(f"{len(errors)} client(s) failed, first: {errors[0]!r}")


def timed(load: Callable[[int, int], None], port: int, total: int) -> float:
    """Messages per second for ``total`` messages to ``port``."""
    t0 = time.perf_counter()
    load(port, total)
    return total / (time.perf_counter() - t0)


# --- servers ---------------------------------------------------------------------------------


class Baseline:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.spool = workdir / "baseline-spool"
        self.log = workdir / "baseline.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Baseline:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "baseline_smtpd.py"),
                    "--port",
                    str(self.port),
                    "--dir",
                    str(self.spool),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not wait_port(self.port, READY_TIMEOUT, self.proc):
            self.stop()
            raise BenchError(f"baseline did not start:\n{tail(self.log)}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 10)

    def stored(self) -> int:
        return count_files(self.spool)


def main() -> int:
    parser = argparse.ArgumentParser(description="SMTP ingest: mailgw vs a durable aiosmtpd")
    parser.add_argument("--messages", type=int, default=2000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 messages, 2 rounds")
    parser.add_argument("--only", choices=("baseline", "mailgw"), help="measure one side only")
    parser.add_argument("--client", choices=("auto", "aiosmtplib", "smtplib"), default="auto")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.rounds = 200, 2
    if args.client == "aiosmtplib" and aiosmtplib is None:
        parser.error("aiosmtplib is not installed")
    use_aio = aiosmtplib is not None and args.client != "smtplib"
    load = aio_load if use_aio else thread_load

    print(f"SMTP ingest: {args.rounds} round(s) x {args.messages} messages of {MESSAGE_SIZE} B,")
    print(f"  {CLIENTS} concurrent clients ({'aiosmtplib' if use_aio else 'smtplib threads'});")
    print(f"  {machine_line()}")
    workdir = Path(tempfile.mkdtemp(prefix="mailgw-bench-smtp-"))
    baseline: Baseline | None = None
    mailgw: MailgwServer | None = None
    ratios: list[float] = []
    figures: dict[str, list[float]] = {"baseline": [], "mailgw": []}
    try:
        if args.only != "mailgw":
            baseline = Baseline(workdir).start()
        if args.only != "baseline":
            mailgw = MailgwServer(workdir / "mailgw", [("smtp", "smtp")])
            mailgw.add_user("bench", "bench-password")
            mailgw.start()
        # warm up both (imports, first directory creation), not measured
        for side in (baseline, mailgw):
            if side is not None:
                load(side.port if isinstance(side, Baseline) else side.ports["smtp"], CLIENTS)
        for rnd in range(1, args.rounds + 1):
            sides: dict[str, Baseline | MailgwServer | None] = {
                "baseline": baseline,
                "mailgw": mailgw,
            }
            result: dict[str, float] = {}
            for name in round_order(list(sides), rnd):
                side = sides[name]
                if side is None:
                    continue
                if isinstance(side, Baseline):
                    before = side.stored()
                    rate = timed(load, side.port, args.messages)
                    stored = side.stored() - before
                else:
                    md = side.maildir("bench")
                    before = count_files(md / "new", md / "cur")
                    rate = timed(load, side.ports["smtp"], args.messages)
                    stored = count_files(md / "new", md / "cur") - before
                if stored != args.messages:
                    raise BenchError(f"{name}: {stored} of {args.messages} messages on disk")
                result[name] = rate
                figures[name].append(rate)
            line = f"round {rnd}: " + "  ".join(
                f"{k} {v:7.1f} msg/s" for k, v in sorted(result.items())
            )
            if len(result) == 2:
                ratios.append(result["mailgw"] / result["baseline"])
                line += f"  ratio {ratios[-1]:.2f}"
            print(line, flush=True)
    except BenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        if mailgw is not None:
            mailgw.stop()
        if baseline is not None:
            baseline.stop()
        finish_workdir(workdir, args.keep)

    print_medians(figures)
    missed = report_ratio(ratios, TARGET, "mailgw/baseline")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
