"""Relay drain benchmark: mailgw's queue runner against a Postfix null client.

Run: ``python3 bench/relay_drain.py`` (``--quick`` for a smoke run).  Needs
Debian's Postfix (``smtp-source`` ships with it) and root, as the interop
tests do (``tests/interop/peers.py`` starts the private instances).

Theory of operation
-------------------
One private Postfix *sink* (``PostfixInstance(sink=True)``) receives
everything into one Maildir.  Both sides drain N queued messages of 4 KiB
(default 5000) to it, in the same run, and the figure is messages per second
from the start of the drain until the sink's Maildir holds all N (so both
include the sink's own delivery):

(a) baseline: a second private Postfix as a null client (``relayhost =
    [127.0.0.1]:<sink port>``, ``defer_transports = smtp``).  N messages are
    injected with ``smtp-source`` (not timed) and wait in its queue; then
    ``defer_transports`` is cleared, Postfix reloaded and ``postqueue -f``
    starts the drain.
(b) mailgw: N messages are enqueued into a fresh spool (``Spool.enqueue``,
    not timed), then one ``QueueRunner.run_once()`` delivers them through a
    smarthost route to the sink (``tls: none``, the route's concurrency and
    messages per connection from the options; defaults as in the config).

The ratio mailgw/Postfix is printed per round and the median over rounds
against the target (>= 0.5).  Runs on a shared machine vary a lot: compare
only figures from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import LOOPBACK, BenchError, machine_line, print_medians, report_ratio, round_order

from mailgw.config.schema import Config, ListenerConfig, RelayConfig, RouteConfig
from mailgw.relay.runner import QueueRunner
from mailgw.relay.spool import Spool
from tests.interop.peers import PeerUnavailable, PostfixInstance
from tests.relay.runner_fixtures import Users

TARGET = 0.5
MESSAGE_SIZE = 4096
SMTP_SOURCE = "/usr/sbin/smtp-source"
DRAIN_TIMEOUT = 600.0


def message(i: int) -> bytes:
    head = (
        f"From: <bench@office.example>\r\nTo: <sink@sink.example>\r\nSubject: drain {i}\r\n"
        f"Message-ID: <drain-{i}-{time.time_ns()}@office.example>\r\n\r\n"
    ).encode()
    line = b"x" * 70 + b"\r\n"
    body = line * ((MESSAGE_SIZE - len(head)) // len(line))
    return head + body


def wait_sink(sink: PostfixInstance, count: int, timeout: float = DRAIN_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while len(sink.messages()) < count:
        if time.monotonic() > deadline:
            raise BenchError(f"sink holds {len(sink.messages())} of {count} messages")
        time.sleep(0.02)


def postfix_round(null: PostfixInstance, sink: PostfixInstance, n: int) -> float:
    """Inject n messages into the (deferring) null client, then time the drain."""
    conf = str(null.etc_dir)
    postconf = ["postconf", "-c", conf, "-e"]
    subprocess.run([*postconf, "defer_transports = smtp"], check=True)
    subprocess.run(["postfix", "-c", conf, "reload"], check=True, capture_output=True)
    source = [SMTP_SOURCE, "-s", "20", "-m", str(n), "-l", str(MESSAGE_SIZE)]
    subprocess.run(
        [
            *source,
            "-f",
            "bench@office.example",
            "-t",
            "sink@sink.example",
            f"{LOOPBACK}:{null.port}",
        ],
        check=True,
        timeout=DRAIN_TIMEOUT,
    )
    deadline = time.monotonic() + 120
    while True:  # every message is in the queue (smtp-source returns at the last 250)
        queue = null.postqueue()
        if f"in {n} Request" in queue or f"{n} Requests" in queue:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"null client queue never reached {n}: {queue[-300:]}")
        time.sleep(0.2)
    before = len(sink.messages())
    start = time.monotonic()
    subprocess.run([*postconf, "defer_transports ="], check=True)
    subprocess.run(["postfix", "-c", conf, "reload"], check=True, capture_output=True)
    subprocess.run(["postqueue", "-c", conf, "-f"], check=True)
    wait_sink(sink, before + n)
    return n / (time.monotonic() - start)


def mailgw_round(
    workdir: Path, sink: PostfixInstance, n: int, concurrency: int, per_connection: int
) -> float:
    root = Path(tempfile.mkdtemp(prefix="spool-", dir=workdir))
    route = RouteConfig(
        name="sink",
        hosts=(f"{LOOPBACK}:{sink.port}",),
        tls="none",
        tls_required=False,
        tls_verify=False,
        concurrency=concurrency,
        max_per_connection=per_connection,
    )
    config = Config(
        data_dir=root,
        hostname="gw.office.example",
        domains=("office.example",),
        listeners=(ListenerConfig("smtp", "smtp", LOOPBACK, 0),),
        relay=RelayConfig(routes=(route,), spool_dir=root / "queue"),
    )
    spool = Spool(config.queue_dir)
    for i in range(n):
        spool.enqueue("bench@office.example", ["sink@sink.example"], message(i), source="smtp")
    runner = QueueRunner(config, spool, userdb=Users())
    before = len(sink.messages())
    start = time.monotonic()
    stats = asyncio.run(runner.run_once())
    if stats.delivered != n:
        raise BenchError(f"mailgw delivered {stats.delivered} of {n}: {stats}")
    wait_sink(sink, before + n)
    elapsed = time.monotonic() - start
    if spool.entries():
        raise BenchError(f"{len(spool.entries())} entries left in the spool")
    return n / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description="relay drain: mailgw vs a Postfix null client")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4, help="mailgw route concurrency")
    parser.add_argument("--per-connection", type=int, default=100, help="messages per connection")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 messages, 1 round")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.rounds = 300, 1
    print(f"relay drain: {args.rounds} round(s) x {args.messages} messages of {MESSAGE_SIZE} B")
    print(f"  mailgw route: concurrency {args.concurrency}, {args.per_connection} per connection")
    print(f"  {machine_line()}")
    workdir = Path(tempfile.mkdtemp(prefix="mailgw-bench-relay-"))
    ratios: list[float] = []
    figures: dict[str, list[float]] = {"postfix": [], "mailgw": []}
    sink = null = None
    try:
        sink = PostfixInstance(sink=True, hostname="sink.test").start()
        null = PostfixInstance(
            users=(),
            domain="null.invalid",
            hostname="null.test",
            main_extra={
                "relayhost": f"[{LOOPBACK}]:{sink.port}",
                "smtp_tls_security_level": "none",
            },
        ).start()
        for rnd in range(1, args.rounds + 1):
            result: dict[str, float] = {}
            for side in round_order(["postfix", "mailgw"], rnd):
                if side == "postfix":
                    rate = postfix_round(null, sink, args.messages)
                else:
                    rate = mailgw_round(
                        workdir, sink, args.messages, args.concurrency, args.per_connection
                    )
                result[side] = rate
                figures[side].append(rate)
            ratios.append(result["mailgw"] / result["postfix"])
            print(
                f"round {rnd}: postfix {result['postfix']:7.1f} msg/s  "
                f"mailgw {result['mailgw']:7.1f} msg/s  ratio {ratios[-1]:.2f}",
                flush=True,
            )
    except PeerUnavailable as exc:
        print(f"SKIPPED: {exc}", file=sys.stderr)
        return 2
    except (BenchError, subprocess.CalledProcessError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        for peer in (null, sink):
            if peer is not None:
                peer.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    print_medians(figures)
    missed = report_ratio(ratios, TARGET, "mailgw/postfix")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
