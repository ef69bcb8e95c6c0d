"""``mailgw migrate`` benchmark: Dovecot to Dovecot against a one-at-a-time copier.

Run: ``python3 bench/migrate.py`` (``--quick`` for a smoke run).

Theory of operation
-------------------
*Seeding.*  3000 messages (seed fixed: 95 % of 2-40 KiB text, 5 % with a
100 KiB-2 MiB base64 attachment; about 200 MB; CRLF lines) are written as
Dovecot writes a Maildir (``cur/<time>.M<n>P<pid>.<host>,S=<size>:2,<flags>``)
into the home of user ``bench`` of a private source Dovecot
(:class:`tests.interop.peers.DovecotInstance`, IMAP on loopback, a ``{PLAIN}``
passwd-file), split over five folders (INBOX, ``Sent``, ``Lists``,
``Archive/2023``, ``Archive/2024``).  One untimed pass reads every message
through IMAP (Dovecot builds its indexes, the page cache is warm).

*Copies.*  Each copy goes into a fresh, empty destination Dovecot.

* baseline: imapclient in this process; per folder CREATE, EXAMINE, ``UID
  SEARCH ALL``, then per UID ``UID FETCH (BODY.PEEK[] FLAGS INTERNALDATE)``
  and one ``APPEND`` with those flags and date (RFC 3501 6.3.11): one message
  per round trip on each side, what a naive script does;
* mailgw: ``python3 -m mailgw migrate imap://... imap://...`` as a
  subprocess (passwords in 0600 files, a fresh ``--state``) with ``-j`` 1, 2
  and 4; the best ``-j`` counts.  Times are wall clock, including the process
  start; the JSON report's engine time is shown too.

Every copy is checked: the destination's message count per folder
(``doveadm mailbox status``) equals the source's.  Each round alternates the
order of baseline and mailgw; figures are messages/s and MB/s (10^6 bytes),
the ratio best-mailgw/baseline per round and its median (target >= 3).

*Re-run.*  The best ``-j`` is run again on its destination with the same state
file: nothing to copy (checked in the report); its wall time as a percentage
of the first run's (target < 5 %).

*Memory.*  A second source gets 300 messages plus one 50 MiB message; one
``mailgw migrate`` copies it into a fresh destination; its peak RSS is the
process's ``VmHWM`` (``/proc/PID/status``, polled every 10 ms until it exits;
not ``ru_maxrss``, which Linux carries over fork+exec from this big parent);
target < 150 MiB.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _common import REPO, BenchError, finish_workdir, machine_line, round_order
from imapclient import IMAPClient

from tests.interop.migrate_util import migrate_argv, migrate_env  # _common put REPO on sys.path
from tests.interop.peers import (
    DovecotInstance,
    PeerError,
    PeerUnavailable,
    make_peer_dir,
    write_plain_passwd,
)

RATIO_TARGET = 3.0
RERUN_TARGET_PCT = 5.0
RSS_TARGET_MIB = 150.0
USER, PASSWORD = "bench", "bench-migrate-password"
SEED = 20250105
# folder on the wire (separator "/") -> Maildir++ directory ("" is INBOX), share
FOLDERS: tuple[tuple[str, str, float], ...] = (
    ("INBOX", "", 0.45),
    ("Sent", ".Sent", 0.15),
    ("Lists", ".Lists", 0.2),
    ("Archive/2023", ".Archive.2023", 0.1),
    ("Archive/2024", ".Archive.2024", 0.1),
)
SMALL = (2 * 1024, 40 * 1024)
LARGE = (100 * 1024, 2 * 1024 * 1024)
LARGE_SHARE = 0.05
BIG_MIB = 50
MEMORY_SET = 300
TIMEOUT = 1800.0


# --- seeding ------------------------------------------------------------------------------------


def make_message(rng: random.Random, n: int, size: int, attachment: bool) -> bytes:
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(1.5e9 + n * 3600))
    head = (
        f"From: Sender {n} <sender{n}@remote.test>\r\nTo: Bench <bench@example.org>\r\n"
        f"Subject: migrate benchmark message {n}\r\nDate: {date}\r\n"
        f"Message-ID: <migrate-{n}@remote.test>\r\nMIME-Version: 1.0\r\n"
    )
    if attachment:
        head += "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        payload = base64.b64encode(rng.randbytes(size * 3 // 4 + 3))
    else:
        head += "Content-Type: text/plain; charset=us-ascii\r\n"
        words = [rng.choice(("mail", "gateway", "office", "report", "the", "a")) for _ in range(64)]
        payload = (" ".join(words) * (size // 300 + 1)).encode()
    body = b"\r\n".join(payload[i : i + 76] for i in range(0, len(payload), 76))
    data = head.encode() + b"\r\n" + body
    return data[: max(len(head) + 10, size)].rstrip(b"\r\n") + b"\r\n"


def seed_maildir(maildir: Path, count: int, big_mib: int = 0) -> dict[str, tuple[int, int]]:
    """``count`` messages over FOLDERS (plus one of ``big_mib`` MiB in INBOX); folder ->
    (messages, bytes)."""
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
        sizes = []
        for _ in range(k):
            big = rng.random() < LARGE_SHARE
            lo, hi = LARGE if big else SMALL
            sizes.append((rng.randint(lo, hi), big))
        if big_mib and i == 0:
            sizes.append((big_mib << 20, True))
        total = 0
        for size, big in sizes:
            data = make_message(rng, n, size, big)
            flags = rng.choice(("", "S", "S", "FS", "RS", "DS", "ST"))
            fname = f"{base + n}.M{n}P{os.getpid()}.{host},S={len(data)}:2,{flags}"
            path = folder / "cur" / fname
            path.write_bytes(data)
            os.utime(path, (base + n, base + n))
            total += len(data)
            n += 1
        seeded[name] = (len(sizes), total)
    return seeded


# --- peers --------------------------------------------------------------------------------------


class Peers:
    """Private Dovecots under one work directory; all cleaned up by :meth:`close`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.made: list[DovecotInstance] = []

    def start(
        self, name: str, seed: int = 0, big_mib: int = 0
    ) -> tuple[DovecotInstance, dict[str, tuple[int, int]]]:
        base = self.workdir / name
        base.mkdir()
        passwd = write_plain_passwd(base / "users.passwd", {USER: PASSWORD})
        seeded: dict[str, tuple[int, int]] = {}
        if seed:
            seeded = seed_maildir(base / "data" / "mail" / USER / "Maildir", seed, big_mib)
        try:
            dc = DovecotInstance(base / "data", passwd, protocols=("imap",))
            self.made.append(dc)
            dc.start()
        except (PeerUnavailable, PeerError) as exc:
            raise BenchError(f"Dovecot: {exc}") from exc
        return dc, seeded

    def close(self) -> None:
        for dc in reversed(self.made):
            dc.cleanup()


def port_of(dc: DovecotInstance) -> int:
    assert dc.imap_port is not None
    return dc.imap_port


def connect(dc: DovecotInstance) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=port_of(dc), ssl=False, timeout=300)
    client.normalise_times = False
    client.login(USER, PASSWORD)
    return client


def warm_up(dc: DovecotInstance, seeded: dict[str, tuple[int, int]]) -> None:
    """Read everything once: Dovecot indexes the Maildir, the page cache fills."""
    client = connect(dc)
    try:
        for name in seeded:
            client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            for i in range(0, len(uids), 200):
                client.fetch(uids[i : i + 200], ["RFC822.SIZE", "BODY.PEEK[]"])
    finally:
        client.logout()


def counts(dc: DovecotInstance) -> dict[str, int]:
    status = dc.mailbox_status(USER, "*", "messages")
    return {name: v["messages"] for name, v in status.items() if v["messages"]}


def check_copy(dst: DovecotInstance, seeded: dict[str, tuple[int, int]], what: str) -> None:
    want = {name: c for name, (c, _) in seeded.items() if c}
    got = counts(dst)
    if got != want:
        raise BenchError(f"{what}: destination holds {got}, expected {want}")


# --- the two copiers ----------------------------------------------------------------------------


def baseline_copy(src: DovecotInstance, dst: DovecotInstance, folders: Sequence[str]) -> float:
    """Fetch one, append one (imapclient); seconds, including connect and login."""
    t0 = time.perf_counter()
    a, b = connect(src), connect(dst)
    try:
        for name in folders:
            if name != "INBOX" and not b.folder_exists(name):
                b.create_folder(name)
            a.select_folder(name, readonly=True)
            for uid in a.search("ALL"):
                got = a.fetch([uid], ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"])[uid]
                flags = [f for f in got[b"FLAGS"] if f != b"\\Recent"]
                b.append(name, got[b"BODY[]"], flags=flags, msg_time=got[b"INTERNALDATE"])
    finally:
        a.logout()
        b.logout()
    return time.perf_counter() - t0


def vm_hwm_kib(pid: int) -> int:
    """The peak resident set of ``pid`` so far (``VmHWM``); 0 once it is gone.

    Not ``ru_maxrss`` from ``wait4``: Linux carries the parent's high-water mark
    over fork and exec, so a child of this (big) process would report ours."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class MigrateResult:
    seconds: float  # wall clock, process start to exit
    engine_seconds: float  # the report's
    copied: int
    skipped: int
    maxrss_kib: int  # VmHWM polled every 10 ms


def mailgw_copy(
    src: DovecotInstance, dst: DovecotInstance, workdir: Path, state: Path, jobs: int
) -> MigrateResult:
    workdir.mkdir(parents=True, exist_ok=True)
    report = workdir / f"report-{time.monotonic_ns()}.json"
    argv = migrate_argv(
        f"imap://{USER}@127.0.0.1:{port_of(src)}",
        f"imap://{USER}@127.0.0.1:{port_of(dst)}",
        workdir,
        src_password=PASSWORD,
        dst_password=PASSWORD,
        state=state,
        report=report,
        extra=("-j", str(jobs), "--no-progress"),
    )
    out, err = workdir / "stdout", workdir / "stderr"
    hwm = 0
    t0 = time.perf_counter()
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, env=migrate_env(workdir), cwd=REPO
        )
        while proc.poll() is None:
            hwm = max(hwm, vm_hwm_kib(proc.pid))
            time.sleep(0.01)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not report.exists():
        raise BenchError(
            f"mailgw migrate -j {jobs} exited {proc.returncode}\n"
            f"{out.read_text(errors='replace')[-3000:]}{err.read_text(errors='replace')[-3000:]}"
        )
    doc = json.loads(report.read_text())
    totals = doc["totals"]
    return MigrateResult(
        seconds,
        float(doc.get("seconds", 0.0)),
        totals["copied"],
        totals["skipped_present"],
        hwm,
    )


# --- main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description="mailgw migrate vs a one-at-a-time copier")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--jobs", default="1,2,4", help="comma-separated -j values to try")
    parser.add_argument("--big-mib", type=int, default=BIG_MIB, help="0: no memory run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 msgs, -j 1,2, 10 MiB")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.rounds, args.jobs, args.big_mib = 300, 1, "1,2", 10
    jobs = [int(j) for j in args.jobs.split(",") if j.strip()]
    # SIGTERM (a runner's timeout) unwinds like Ctrl-C: the Dovecots are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    print(
        f"migrate: {args.rounds} round(s) x {args.messages} messages "
        f"({100 - LARGE_SHARE * 100:.0f}% {SMALL[0] // 1024}-{SMALL[1] // 1024} KiB text, "
        f"{LARGE_SHARE * 100:.0f}% {LARGE[0] // 1024}-{LARGE[1] // 1024} KiB attachments, "
        f"seed {SEED}) in {len(FOLDERS)} folders, Dovecot -> fresh Dovecot over IMAP;"
    )
    print(f"  baseline: imapclient, one UID FETCH + one APPEND per message; mailgw -j {args.jobs}")
    print(f"  {machine_line()}")
    workdir = make_peer_dir("mailgw-bench-migrate-")
    peers = Peers(workdir)
    base_rates: list[tuple[float, float]] = []
    best_rates: list[tuple[float, float, int]] = []
    ratios: list[float] = []
    per_j: dict[int, list[float]] = {j: [] for j in jobs}
    rerun: tuple[float, float, MigrateResult] | None = None
    memory: MigrateResult | None = None
    try:
        t0 = time.perf_counter()
        src, seeded = peers.start("src", args.messages)
        total = sum(b for _, b in seeded.values())
        warm_up(src, seeded)
        print(
            f"seeded {args.messages} messages, {total / 1e6:.1f} MB "
            f"({', '.join(f'{k}: {v[0]}' for k, v in seeded.items())}) and warmed up "
            f"in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        n = 0
        last_best: tuple[MigrateResult, DovecotInstance, Path, int] | None = None
        for rnd in range(1, args.rounds + 1):
            results: dict[int, MigrateResult] = {}
            base_seconds = 0.0
            for side in round_order(["baseline", "mailgw"], rnd):
                if side == "baseline":
                    n += 1
                    dst, _ = peers.start(f"dst{n}")
                    base_seconds = baseline_copy(src, dst, list(seeded))
                    check_copy(dst, seeded, "baseline")
                    dst.cleanup()
                    continue
                for j in jobs:
                    n += 1
                    dst, _ = peers.start(f"dst{n}")
                    state = workdir / f"state{n}.sqlite"
                    res = mailgw_copy(src, dst, workdir / f"run{n}", state, j)
                    check_copy(dst, seeded, f"mailgw -j {j}")
                    if res.copied != args.messages:
                        raise BenchError(f"-j {j}: report says {res.copied} copied")
                    results[j] = res
                    per_j[j].append(args.messages / res.seconds)
                    if last_best is None or res.seconds < last_best[0].seconds:
                        if last_best is not None:
                            last_best[1].cleanup()
                        last_best = (res, dst, state, j)
                    else:
                        dst.cleanup()
            best_j = min(results, key=lambda j: results[j].seconds)
            best = results[best_j]
            base_rates.append((args.messages / base_seconds, total / base_seconds / 1e6))
            best_rates.append((args.messages / best.seconds, total / best.seconds / 1e6, best_j))
            ratios.append(base_seconds / best.seconds)
            line = "  ".join(
                f"-j {j} {args.messages / r.seconds:6.1f} msg/s ({r.engine_seconds:.1f} s engine)"
                for j, r in sorted(results.items())
            )
            print(
                f"round {rnd}: baseline {base_rates[-1][0]:6.1f} msg/s "
                f"{base_rates[-1][1]:5.1f} MB/s"
                f"  mailgw {line}  best -j {best_j}  ratio {ratios[-1]:.2f}",
                flush=True,
            )

        # re-run of the fastest copy: same destination, same state
        assert last_best is not None
        first, dst, state, j = last_best
        again = mailgw_copy(src, dst, workdir / "rerun", state, j)
        if again.copied != 0 or again.skipped != args.messages:
            raise BenchError(f"re-run copied {again.copied}, skipped {again.skipped}")
        check_copy(dst, seeded, "re-run")
        rerun = (first.seconds, again.seconds, again)
        print(
            f"re-run (-j {j}): {again.seconds:.2f} s wall ({again.engine_seconds:.2f} s engine) "
            f"vs first {first.seconds:.2f} s ({first.engine_seconds:.2f} s engine)",
            flush=True,
        )
        dst.cleanup()
        src.cleanup()

        if args.big_mib:
            msrc, mseeded = peers.start("msrc", MEMORY_SET, args.big_mib)
            warm_up(msrc, mseeded)
            mdst, _ = peers.start("mdst")
            memory = mailgw_copy(msrc, mdst, workdir / "memory", workdir / "mstate.sqlite", 1)
            check_copy(mdst, mseeded, "memory run")
            mbytes = sum(b for _, b in mseeded.values())
            print(
                f"memory run: {MEMORY_SET + 1} messages ({mbytes / 1e6:.1f} MB, one of "
                f"{args.big_mib} MiB) in {memory.seconds:.1f} s, peak RSS "
                f"{memory.maxrss_kib / 1024:.1f} MiB",
                flush=True,
            )
    except BenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        peers.close()
        finish_workdir(workdir, args.keep)

    missed = False
    print()
    print(f"{'figure':<34}{'value':>16}  {'target':>10}  verdict")
    base_med = statistics.median(r[0] for r in base_rates)
    best_med = statistics.median(r[0] for r in best_rates)
    print(f"{'baseline (fetch one, append one)':<34}{base_med:>10.1f} msg/s  {'':>10}")
    for j, rates in per_j.items():
        if rates:
            print(f"{f'mailgw migrate -j {j}':<34}{statistics.median(rates):>10.1f} msg/s")
    best_js = ", ".join(str(r[2]) for r in best_rates)
    ratio = statistics.median(ratios)
    met = ratio >= RATIO_TARGET
    missed |= not met
    print(
        f"{f'mailgw best (-j {best_js})':<34}{best_med:>10.1f} msg/s  "
        f"{'':>10}\n{'ratio mailgw/baseline (median)':<34}{ratio:>16.2f}  "
        f"{'>= ' + str(RATIO_TARGET):>10}  {'met' if met else 'NOT met'}"
    )
    if rerun is not None:
        first_s, again_s, res = rerun
        pct = 100 * again_s / first_s
        met = pct < RERUN_TARGET_PCT
        missed |= not met
        print(
            f"{'re-run / first run (wall)':<34}{pct:>15.1f}%  {'< 5%':>10}  "
            f"{'met' if met else 'NOT met'}  ({again_s:.2f} s of {first_s:.2f} s; engine "
            f"{res.engine_seconds:.2f} s)"
        )
    if memory is not None:
        mib = memory.maxrss_kib / 1024
        met = mib < RSS_TARGET_MIB
        missed |= not met
        print(
            f"{f'peak RSS with a {args.big_mib} MiB message':<34}{mib:>12.1f} MiB  "
            f"{'< 150 MiB':>10}  {'met' if met else 'NOT met'}"
        )
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
