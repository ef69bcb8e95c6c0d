"""IMAP FETCH and IDLE benchmark: mailgw's IMAP against a private Dovecot, same Maildir.

Run: ``python3 bench/imap_fetch.py`` (``--quick`` for a smoke run).

Theory of operation
-------------------
*Seeding.*  3000 messages (seed fixed: 95 % of 2-50 KiB, 5 % of 200 KiB-2 MiB;
CRLF lines, base64 bodies) are written as Dovecot writes a Maildir
(``cur/<time>.M<n>P<pid>.<host>,S=<size>:2,`` with a few flags) into the mailgw
data directory of user ``bench`` (password set with ``mailgw user add``), split
over three folders: INBOX (60 %), ``Lists`` and ``Archive/2023`` (Maildir++
``.Lists``, ``.Archive.2023``).  Both servers serve that one directory on
loopback: mailgw (``python3 -m mailgw --config <tmp>/mailgw.yaml serve``, one
``imap`` listener, ``tls: none``, ``trusted: true``) and Dovecot
(:class:`tests.interop.peers.DovecotInstance`; the tree is chowned to the
``mail`` user before each Dovecot pass, mailgw runs as root and keeps access).

*FETCH.*  One client, the same for both: a raw socket with a buffered reader
(``socket.makefile``), which reads literals by their announced length.  A pass
logs in (not timed), then per folder: SELECT, ``UID SEARCH ALL``, and
``UID FETCH <100 UIDs> (BODY.PEEK[])`` batches until every message is read; the
literal byte counts must add up to the seeded sizes, folder by folder.  Each
server gets one untimed warm-up pass (first scan, indexes, page cache); every
round then times one pass per server, alternating the order.  Figures:
messages/s and MB/s (10^6 bytes of message content); the ratio mailgw/Dovecot
per round, and its median against the target (>= 0.5, RFC-neutral).

*IDLE.*  mailgw is restarted (so the figure is not the FETCH rounds' heap), and
500 connections log in (pipelined), SELECT INBOX and IDLE (RFC 2177) until each
has its ``+`` continuation.  The server process's VmRSS (``/proc/PID/status``)
is read before and while they idle (target < 150 MiB with 500).  Then one more
connection APPENDs a message to INBOX and every idling client must hear
``* N EXISTS`` (bounded wait); DONE, LOGOUT.  RLIMIT_NOFILE is raised before
any server starts (servers inherit it).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import random
import re
import resource
import selectors
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import cast

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

FETCH_TARGET = 0.5
RSS_TARGET_MIB = 150.0
USER, PASSWORD = "bench", "bench-imap-password"
SEED = 20241124
BATCH = 100
# folder name on the wire -> Maildir++ directory under Maildir/ ("" is INBOX), share
FOLDERS: tuple[tuple[str, str, float], ...] = (
    ("INBOX", "", 0.6),
    ("Lists", ".Lists", 0.25),
    ("Archive/2023", ".Archive.2023", 0.15),
)
SMALL = (2 * 1024, 50 * 1024)
LARGE = (200 * 1024, 2 * 1024 * 1024)
LARGE_SHARE = 0.05
IO_TIMEOUT = 120.0
IDLE_WAIT = 60.0  # seconds for every IDLE client to hear EXISTS


# --- seeding ------------------------------------------------------------------------------------


def make_message(rng: random.Random, n: int, size: int) -> bytes:
    head = (
        f"From: Sender {n} <sender{n}@remote.test>\r\nTo: Bench <bench@example.org>\r\n"
        f"Subject: fetch benchmark message {n}\r\nMessage-ID: <fetch-{n}@remote.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    payload = base64.b64encode(rng.randbytes(max(0, size - len(head)) * 3 // 4 + 3))
    body = b"".join(payload[i : i + 76] + b"\r\n" for i in range(0, len(payload), 76))
    return head + body[: max(2, size - len(head) - 2)].rstrip(b"\r\n") + b"\r\n"


def seed_maildir(maildir: Path, count: int) -> dict[str, tuple[int, int]]:
    """``count`` messages over FOLDERS; folder -> (messages, bytes)."""
    rng = random.Random(SEED)
    host = socket.gethostname().replace("/", "_").replace(":", "_") or "bench"
    base = int(time.time()) - count
    seeded: dict[str, tuple[int, int]] = {}
    n = 0
    for i, (name, sub, share) in enumerate(FOLDERS):
        folder = maildir / sub if sub else maildir
        for d in ("cur", "new", "tmp"):
            (folder / d).mkdir(parents=True, exist_ok=True)
        if sub:
            (folder / "maildirfolder").touch()
        last = i == len(FOLDERS) - 1
        k = count - sum(v[0] for v in seeded.values()) if last else int(count * share)
        total = 0
        for _ in range(k):
            lo, hi = LARGE if rng.random() < LARGE_SHARE else SMALL
            data = make_message(rng, n, rng.randint(lo, hi))
            flags = rng.choice(("", "S", "S", "FS", "RS"))
            name_ = f"{base + n}.M{n}P{os.getpid()}.{host},S={len(data)}:2,{flags}"
            (folder / "cur" / name_).write_bytes(data)
            total += len(data)
            n += 1
        seeded[name] = (k, total)
    os.sync()
    return seeded


# --- a small IMAP client: raw socket, buffered reader ----------------------------------------


class ImapClient:
    """Just enough IMAP for the benchmark; raises BenchError on any NO/BAD."""

    def __init__(self, port: int, timeout: float = IO_TIMEOUT) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.reader = cast(BufferedReader, self.sock.makefile("rb", buffering=1 << 16))
        self.port = port
        self.n = 0
        greeting = self.reader.readline()
        if not greeting.startswith(b"* OK"):
            raise BenchError(f"port {port}: greeting {greeting!r}")

    def send(self, command: str) -> str:
        self.n += 1
        tag = f"b{self.n}"
        self.sock.sendall(f"{tag} {command}\r\n".encode())
        return tag

    def read_response(self, tag: str) -> tuple[list[bytes], int, int]:
        """Until the tagged reply: (untagged lines without literals, literals, literal bytes)."""
        lines: list[bytes] = []
        literals = literal_bytes = 0
        prefix = tag.encode() + b" "
        while True:
            line = self.reader.readline()
            if not line:
                raise BenchError(f"port {self.port}: connection closed waiting for {tag}")
            while line.endswith(b"}\r\n"):  # a literal, then the rest of the line
                start = line.rindex(b"{")
                size = int(line[start + 1 : -3].rstrip(b"+"))
                got = self.reader.read(size)
                if len(got) != size:
                    raise BenchError(f"port {self.port}: short literal {len(got)}/{size}")
                literals += 1
                literal_bytes += size
                line = line[:start] + self.reader.readline()
            if line.startswith(prefix):
                if not line[len(prefix) :].startswith(b"OK"):
                    raise BenchError(f"port {self.port}: {line!r}")
                return lines, literals, literal_bytes
            lines.append(line)

    def command(self, command: str) -> tuple[list[bytes], int, int]:
        return self.read_response(self.send(command))

    def login(self) -> None:
        self.command(f'LOGIN {USER} "{PASSWORD}"')

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.command("LOGOUT")
        with contextlib.suppress(OSError):
            self.reader.close()
            self.sock.close()


def fetch_all(port: int, seeded: dict[str, tuple[int, int]]) -> tuple[float, int, int]:
    """One pass over every folder; (seconds after login, messages, bytes)."""
    client = ImapClient(port)
    try:
        client.login()
        messages = received = 0
        t0 = time.perf_counter()
        for name, (count, size) in seeded.items():
            client.command(f'SELECT "{name}"')
            lines, _, _ = client.command("UID SEARCH ALL")
            uids = [u for ln in lines if ln.startswith(b"* SEARCH") for u in ln.split()[2:]]
            if len(uids) != count:
                raise BenchError(f"port {port}: {name}: {len(uids)} UIDs, expected {count}")
            got_msgs = got_bytes = 0
            for i in range(0, len(uids), BATCH):
                batch = b",".join(uids[i : i + BATCH]).decode()
                _, lits, nbytes = client.command(f"UID FETCH {batch} (BODY.PEEK[])")
                got_msgs += lits
                got_bytes += nbytes
            if (got_msgs, got_bytes) != (count, size):
                raise BenchError(
                    f"port {port}: {name}: got {got_msgs} messages / {got_bytes} bytes, "
                    f"expected {count} / {size}"
                )
            messages += got_msgs
            received += got_bytes
        elapsed = time.perf_counter() - t0
    finally:
        client.close()
    return elapsed, messages, received


# --- IDLE and memory --------------------------------------------------------------------------


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def raise_nofile(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if new < wanted and os.geteuid() == 0:
        new = wanted
        hard = wanted
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, max(hard, new)))


@dataclass
class IdleResult:
    rss_rest_kib: int
    rss_idle_kib: int
    setup_seconds: float
    heard: int
    hear_seconds: float
    inbox: int  # messages in INBOX when SELECTed


def idle_phase(port: int, pid: int, count: int) -> IdleResult:
    rest = vm_rss_kib(pid)
    clients: list[ImapClient] = []
    t0 = time.perf_counter()
    try:
        for _ in range(count):
            clients.append(ImapClient(port))
        tags = [c.send(f'LOGIN {USER} "{PASSWORD}"') for c in clients]  # pipelined
        for c, tag in zip(clients, tags, strict=True):
            c.read_response(tag)
        tags = [c.send("SELECT INBOX") for c in clients]
        exists = 0
        for c, tag in zip(clients, tags, strict=True):
            lines, _, _ = c.read_response(tag)
            exists = max(
                [int(m.group(1)) for ln in lines if (m := re.match(rb"\* (\d+) EXISTS", ln))]
                + [exists]
            )
        for c in clients:
            c.send("IDLE")
        for c in clients:
            line = c.reader.readline()
            if not line.startswith(b"+"):
                raise BenchError(f"IDLE answered {line!r}")
        setup = time.perf_counter() - t0
        time.sleep(1.0)  # let the server settle
        rss = vm_rss_kib(pid)

        # a delivery while they idle: every client must hear "* N EXISTS"
        poster = ImapClient(port)
        try:
            poster.login()
            msg = b"Subject: idle wake-up\r\n\r\nwake up\r\n"
            tag = poster.send(f"APPEND INBOX {{{len(msg)}+}}")
            poster.sock.sendall(msg + b"\r\n")
            t1 = time.perf_counter()
            poster.read_response(tag)
        finally:
            poster.close()
        want = f"* {exists + 1} EXISTS".encode()
        heard = _wait_all_hear(clients, want, IDLE_WAIT)
        hear = time.perf_counter() - t1
        for c in clients:
            c.sock.sendall(b"DONE\r\n")
        for c in clients:
            c.read_response(f"b{c.n}")  # the IDLE command's tagged OK
        return IdleResult(rest, rss, setup, heard, hear, exists)
    finally:
        for c in clients:
            c.close()


def _wait_all_hear(clients: Sequence[ImapClient], want: bytes, timeout: float) -> int:
    """How many clients read a line starting with ``want`` within ``timeout`` s."""
    sel = selectors.DefaultSelector()
    buffers: dict[int, bytes] = {}
    for i, c in enumerate(clients):
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ, i)
        buffers[i] = b""
    heard: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(heard) < len(clients) and time.monotonic() < deadline:
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                i = key.data
                try:
                    chunk = clients[i].sock.recv(65536)
                except BlockingIOError:
                    continue
                buffers[i] += chunk
                if any(ln.startswith(want) for ln in buffers[i].split(b"\r\n")):
                    heard.add(i)
                    sel.unregister(clients[i].sock)
    finally:
        sel.close()
        for c in clients:
            c.sock.settimeout(IO_TIMEOUT)
    return len(heard)


# --- main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description="IMAP FETCH + IDLE: mailgw vs Dovecot")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=int, default=500, help="concurrent IDLE connections")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 300 msgs, 1 round, 50 IDLE"
    )
    parser.add_argument("--only", choices=("mailgw", "dovecot"), help="FETCH on one side only")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.rounds, args.idle = 300, 1, 50
    raise_nofile(2 * args.idle + 256)

    print(
        f"IMAP FETCH: {args.rounds} round(s) x {args.messages} messages "
        f"({100 - LARGE_SHARE * 100:.0f}% {SMALL[0] // 1024}-{SMALL[1] // 1024} KiB, "
        f"{LARGE_SHARE * 100:.0f}% {LARGE[0] // 1024}-{LARGE[1] // 1024} KiB, seed {SEED}) "
        f"in {len(FOLDERS)} folders, UID FETCH {BATCH} x BODY.PEEK[] per command, one client;"
    )
    print(f"  {machine_line()}")
    workdir = make_peer_dir("mailgw-bench-imap-")  # Dovecot's mail user must reach it
    data = workdir / "data"
    mailgw: MailgwServer | None = None
    dovecot: DovecotInstance | None = None
    figures: dict[str, list[tuple[float, float]]] = {"mailgw": [], "dovecot": []}
    ratios: list[float] = []
    idle: IdleResult | None = None
    try:
        mailgw = MailgwServer(workdir / "mailgw", [("imap", "imap")], data_dir=data)
        mailgw.add_user(USER, PASSWORD)
        t0 = time.perf_counter()
        seeded = seed_maildir(mailgw.maildir(USER), args.messages)
        total = sum(b for _, b in seeded.values())
        print(
            f"seeded {args.messages} messages, {total / 1e6:.1f} MB "
            f"({', '.join(f'{k}: {v[0]}' for k, v in seeded.items())}) "
            f"in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        ports: dict[str, int] = {}
        if args.only != "dovecot":
            mailgw.start()
            ports["mailgw"] = mailgw.ports["imap"]
        if args.only != "mailgw":
            try:
                dovecot = DovecotInstance(data, data / "users.passwd", protocols=("imap",))
                dovecot.start()
            except (PeerUnavailable, PeerError) as exc:
                raise BenchError(f"Dovecot: {exc}") from exc
            assert dovecot.imap_port is not None
            ports["dovecot"] = dovecot.imap_port
        _, uid, gid = mail_owner()

        def one_pass(name: str) -> float:
            if name == "dovecot":
                chown_tree(data, uid, gid)  # files mailgw may have created as root
            seconds, _msgs, _bytes = fetch_all(ports[name], seeded)
            return seconds

        for name in ports:  # warm-up
            one_pass(name)
        mail_rounds(
            list(ports), args.rounds, args.messages, total, one_pass, figures, ratios, "dovecot"
        )

        if args.idle > 0:
            if dovecot is not None:
                dovecot.stop()
            mailgw.stop()
            mailgw.start()  # a fresh process: the figure is IDLE's, not the FETCH rounds'
            assert mailgw.proc is not None
            idle = idle_phase(mailgw.ports["imap"], mailgw.proc.pid, args.idle)
    except BenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        if mailgw is not None:
            mailgw.stop()
        if dovecot is not None:
            dovecot.cleanup()
        finish_workdir(workdir, args.keep)

    missed = False
    print_mail_medians(figures)
    missed |= report_ratio(ratios, FETCH_TARGET, "FETCH mailgw/Dovecot")
    if idle is not None:
        mib = idle.rss_idle_kib / 1024
        met = mib < RSS_TARGET_MIB and idle.heard == args.idle
        print(
            f"IDLE: {args.idle} connections logged in, SELECTed INBOX ({idle.inbox} messages) "
            f"and idling in "
            f"{idle.setup_seconds:.1f} s; mailgw VmRSS {idle.rss_rest_kib / 1024:.1f} MiB at rest, "
            f"{mib:.1f} MiB with {args.idle} idling "
            f"({(idle.rss_idle_kib - idle.rss_rest_kib) / max(1, args.idle):.1f} KiB each); "
            f"target < {RSS_TARGET_MIB:.0f} MiB: {'met' if mib < RSS_TARGET_MIB else 'NOT met'}"
        )
        print(
            f"IDLE wake-up: {idle.heard}/{args.idle} clients heard the APPEND's EXISTS "
            f"within {idle.hear_seconds:.2f} s{'' if idle.heard == args.idle else ' (NOT all)'}"
        )
        missed |= not met
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
