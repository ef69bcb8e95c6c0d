"""POP3 retrieval benchmark: mailgw's POP3 against a private Dovecot on the same Maildir.

Run: ``python3 bench/pop3_retr.py`` (``--quick`` for a smoke run).

Theory of operation
-------------------
A maildrop of 1000 messages (sizes 1-200 KiB drawn with a fixed seed, CRLF
lines, some starting with "." so byte-stuffing is exercised) is written into a
mailgw data directory as Dovecot writes a Maildir (``new/<time>.M<n>P<pid>.<host>,S=<size>``)
for user ``bench``, whose password is set with ``mailgw user add bench``
(``{ARGON2ID}`` hash, ``$MAILGW_PASSWORD``).  Two servers serve that one
directory, both on loopback:

* mailgw: ``python3 -m mailgw --config <tmp>/mailgw.yaml serve`` with one
  ``pop3`` listener (``tls: none``, ``trusted: true``);
* Dovecot: ``tests/interop/peers.py`` :class:`DovecotInstance` on the same data
  directory and ``users.passwd`` (it chowns them to the ``mail`` user; mailgw
  runs as root and keeps access; the tree is chowned again before each Dovecot
  pass in case mailgw created files).

A client logs in with poplib (not timed: argon2 is deliberately slow),
RETRs every message in order, checks the byte count, and QUITs without DELE.
The same client code serves both servers.  By default (``--client
buffered``) it sends ``RETR n`` on poplib's socket and reads the reply from
poplib's buffered socket file in 256 KiB blocks until the terminator, then
counts the unstuffed octets; ``--client poplib`` uses ``POP3.retr()``, whose
``readline()`` per line costs more than either server, so it mostly measures
itself.

Each server gets one untimed warm-up pass (first scan, UID assignment, page
cache), then every round times one pass per server, alternating the order.  Figures:
messages/s and MB/s (10^6 bytes of message content); the ratio mailgw/Dovecot
per round and its median against the target (>= 0.5).
"""

from __future__ import annotations

import argparse
import base64
import os
import poplib
import random
import socket
import sys
import time
from pathlib import Path

from _common import (
    LOOPBACK,
    BenchError,
    MailgwServer,
    finish_workdir,
    machine_line,
    mail_rounds,
    print_mail_medians,
    report_ratio,
)

from tests.interop.peers import (  # bench/_common put the repository on sys.path
    DovecotInstance,
    PeerError,
    PeerUnavailable,
    chown_tree,
    mail_owner,
    make_peer_dir,
)

TARGET = 0.5
USER, PASSWORD = "bench", "bench-pop3-password"
SEED = 20241123
MIN_SIZE, MAX_SIZE = 1024, 200 * 1024
BLOCK = 256 * 1024  # read size of the buffered client


def make_message(rng: random.Random, n: int, size: int) -> bytes:
    head = (
        f"From: Sender {n} <sender{n}@remote.test>\r\nTo: Bench <bench@example.org>\r\n"
        f"Subject: retr benchmark message {n}\r\nMessage-ID: <retr-{n}@remote.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    lines = [b".this line starts with a dot\r\n"]
    payload = base64.b64encode(rng.randbytes(max(0, size - len(head)) * 3 // 4 + 3))
    for i in range(0, len(payload), 76):
        lines.append(payload[i : i + 76] + b"\r\n")
    body = b"".join(lines)
    return head + body[: max(2, size - len(head) - 2)].rstrip(b"\r\n") + b"\r\n"


def seed_maildrop(maildir: Path, count: int, max_size: int) -> int:
    """``count`` messages in Dovecot's Maildir naming; total bytes."""
    rng = random.Random(SEED)
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().replace("/", "_").replace(":", "_") or "bench"
    base = int(time.time()) - count
    total = 0
    for n in range(count):
        data = make_message(rng, n, rng.randint(MIN_SIZE, max_size))
        name = f"{base + n}.M{n}P{os.getpid()}.{host},S={len(data)}"
        (maildir / "new" / name).write_bytes(data)
        total += len(data)
    os.sync()
    return total


def read_multiline(pop: poplib.POP3, what: str) -> bytes:
    """The raw body of a multi-line reply after its "+OK" line, terminator included.

    Reads big blocks from poplib's buffered socket file instead of one
    ``readline()`` per line.  The client sends one command at a time, so the
    reply ends where the buffer first ends in the terminator: byte-stuffing
    (RFC 1939 section 3) keeps a lone "." line out of the body.
    """
    status = pop.file.readline(4096)
    if not status.startswith(b"+OK"):
        raise BenchError(f"{what}: {status[:100]!r}")
    buf = bytearray()
    while not (buf.endswith(b"\r\n.\r\n") or buf == b".\r\n"):
        block = pop.file.read1(BLOCK)
        if not block:
            raise BenchError(f"{what}: connection closed mid-reply")
        buf += block
    return bytes(buf)


def unstuffed_size(body: bytes) -> int:
    """Octets of the message a multi-line body carries (stuffing and terminator removed)."""
    return len(body) - 3 - body.count(b"\r\n..") - (1 if body.startswith(b"..") else 0)


def retr_all(port: int, expected_count: int, expected_bytes: int, client: str) -> tuple[float, int]:
    """Log in, RETR every message; (seconds spent in the RETRs, bytes received)."""
    pop = poplib.POP3(LOOPBACK, port, timeout=120)
    try:
        pop.user(USER)
        pop.pass_(PASSWORD)
        count, _ = pop.stat()
        if count != expected_count:
            raise BenchError(f"port {port}: STAT says {count} messages, expected {expected_count}")
        received = 0
        t0 = time.perf_counter()
        if client == "poplib":  # one readline() per line: the client dominates
            for i in range(1, count + 1):
                _, lines, _octets = pop.retr(i)
                received += sum(len(line) + 2 for line in lines)
        else:
            for i in range(1, count + 1):
                pop.sock.sendall(b"RETR %d\r\n" % i)
                received += unstuffed_size(read_multiline(pop, f"port {port} RETR {i}"))
        elapsed = time.perf_counter() - t0
    finally:
        pop.quit()
    if received != expected_bytes:
        raise BenchError(f"port {port}: received {received} bytes, expected {expected_bytes}")
    return elapsed, received


def main() -> int:
    parser = argparse.ArgumentParser(description="POP3 RETR: mailgw vs Dovecot, same Maildir")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-size", type=int, default=MAX_SIZE, help="bytes")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 messages, 1 round")
    parser.add_argument(
        "--client",
        choices=("buffered", "poplib"),
        default="buffered",
        help="buffered: poplib login, then RETR replies read in 256 KiB blocks (default); "
        "poplib: poplib.POP3.retr(), one readline() per line",
    )
    parser.add_argument("--only", choices=("mailgw", "dovecot"), help="measure one side only")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.rounds = 100, 1

    print(
        f"POP3 RETR: {args.rounds} round(s) x {args.messages} messages of "
        f"{MIN_SIZE // 1024}-{args.max_size // 1024} KiB (seed {SEED}), "
        f"one {args.client} client for both servers;"
    )
    print(f"  {machine_line()}")
    workdir = make_peer_dir("mailgw-bench-pop3-")  # Dovecot's mail user must reach it
    data = workdir / "data"
    mailgw: MailgwServer | None = None
    dovecot: DovecotInstance | None = None
    figures: dict[str, list[tuple[float, float]]] = {"mailgw": [], "dovecot": []}
    ratios: list[float] = []
    try:
        mailgw = MailgwServer(workdir / "mailgw", [("pop3", "pop3")], data_dir=data)
        mailgw.add_user(USER, PASSWORD)
        t0 = time.perf_counter()
        total = seed_maildrop(mailgw.maildir(USER), args.messages, args.max_size)
        print(
            f"seeded {args.messages} messages, {total / 1e6:.1f} MB "
            f"in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        ports: dict[str, int] = {}
        if args.only != "dovecot":
            mailgw.start()
            ports["mailgw"] = mailgw.ports["pop3"]
        if args.only != "mailgw":
            try:
                dovecot = DovecotInstance(data, data / "users.passwd", protocols=("pop3",))
                dovecot.start()
            except (PeerUnavailable, PeerError) as exc:
                raise BenchError(f"Dovecot: {exc}") from exc
            assert dovecot.pop3_port is not None
            ports["dovecot"] = dovecot.pop3_port
        _, uid, gid = mail_owner()

        def one_pass(name: str) -> float:
            if name == "dovecot":
                chown_tree(data, uid, gid)  # files mailgw may have created as root
            seconds, _received = retr_all(ports[name], args.messages, total, args.client)
            return seconds

        for name in ports:  # warm-up: first scan, uidlist, page cache
            one_pass(name)
        mail_rounds(
            list(ports), args.rounds, args.messages, total, one_pass, figures, ratios, "dovecot"
        )
    except BenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        if mailgw is not None:
            mailgw.stop()
        if dovecot is not None:
            dovecot.cleanup()
        finish_workdir(workdir, args.keep)

    print_mail_medians(figures)
    missed = report_ratio(ratios, TARGET, "mailgw/Dovecot")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
