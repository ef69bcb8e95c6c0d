"""``mailgw probe`` concurrency benchmark: seven ports at once against one at a time.

Run: ``python3 bench/probe.py`` (``--quick`` for a smoke run, ``--check`` to exit 1
when the target is missed).

Theory of operation
-------------------
*Servers.*  Seven services listen on loopback, each with a certificate of a
fresh test CA (:func:`tests.e2e_util.make_certs`): a private Dovecot
(:class:`tests.interop.peers.DovecotInstance`) gives ``imap`` and ``pop3``
(STARTTLS/STLS) and ``imaps`` and ``pop3s`` (implicit TLS); ``mailgw serve``
(:class:`tests.e2e_util.ServeProcess`) gives ``smtp`` and ``submission``
(STARTTLS) and ``smtps`` (a submission listener with implicit TLS).  The
same user and password exist on both, so every probe can run its login test
(``--no-login`` leaves it out).  The targets are ``127.0.0.1:<port>/<proto>``,
exactly what ``mailgw probe`` passes to the engine.

*Latency.*  On bare loopback a probe is CPU (TLS handshakes, certificate
parsing, one Python client), not waiting, and no concurrency can hide CPU on
two shared cores.  Real probes wait on round trips, so by default a relay in
its own process (asyncio, one per service port) sits in front of every
service and delivers each chunk ``--delay`` ms (default 10, a 20 ms RTT) late
in each direction, order kept.  ``--delay 0`` measures bare loopback.

*Measure.*  In-process, with the engine the command uses
(``mailgw.probe.runner.run_probes`` with ``ProbeOptions``: the CA file, the
login, a 30 s deadline), so interpreter start-up is not part of the figure.
One untimed warm-up pass, then per round: each target probed alone, one after
the other (order alternating by round), giving the *sum* and the *slowest*
single probe; then all seven in one ``run_probes`` call, the *concurrent* wall
time.  Every probe must end in state ``ok`` (else the run is an error).  Per
round the ratio concurrent / slowest single; the median over the rounds is
held against the target (<= 1.3: probing a host's seven ports costs little
more than its slowest port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import LOOPBACK, BenchError, finish_workdir, free_port, machine_line, round_order

from tests.e2e_util import CertFiles, Listener, ServeError, ServeProcess, make_certs
from tests.interop.peers import DovecotInstance, PeerError, PeerUnavailable, make_peer_dir

TARGET = 1.3
USER, PASSWORD = "bench", "bench-probe-password"
DEADLINE = 30.0


def start_servers(
    workdir: Path, certs: CertFiles
) -> tuple[ServeProcess, DovecotInstance, dict[str, str]]:
    """mailgw serve and Dovecot; proto -> ``127.0.0.1:port/proto``."""
    data = workdir / "data"
    listeners = (
        Listener("smtp", "smtp", "starttls"),
        Listener("submission", "submission", "starttls"),
        Listener("smtps", "submission", "implicit"),
    )
    serve = ServeProcess(workdir / "serve", certs=certs, listeners=listeners, data_dir=data)
    try:
        serve.start()
    except ServeError as exc:
        raise BenchError(f"mailgw serve: {exc}") from exc
    try:
        serve.add_user(USER, PASSWORD)
        dovecot = DovecotInstance.with_plain_users(
            workdir / "dovecot-data",
            {USER: PASSWORD},
            ssl_cert=certs.cert,
            ssl_key=certs.key,
            protocols=("imap", "pop3"),
        )
        dovecot.start()
    except (PeerUnavailable, PeerError, AssertionError) as exc:
        serve.kill()
        raise BenchError(f"Dovecot: {exc}") from exc
    ports = {
        "smtp": serve.port("smtp"),
        "submission": serve.port("submission"),
        "smtps": serve.port("smtps"),
        "imap": dovecot.imap_port,
        "imaps": dovecot.imaps_port,
        "pop3": dovecot.pop3_port,
        "pop3s": dovecot.pop3s_port,
    }
    return serve, dovecot, {proto: f"127.0.0.1:{port}/{proto}" for proto, port in ports.items()}


# --- WAN emulation: a delaying TCP relay in its own process -------------------------------------


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk ``delay`` seconds late, order kept."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, chunk = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not chunk:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            chunk = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, chunk))
            if not chunk:
                break
        await sender
    except OSError:
        sender.cancel()
    finally:
        writer.close()


async def _relay_main(routes: dict[int, int], delay: float, ready: Any) -> None:
    async def handle(port: int, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            sr, sw = await asyncio.open_connection(LOOPBACK, routes[port])
        except OSError:
            cw.close()
            return
        await asyncio.gather(_pump(cr, sw, delay), _pump(sr, cw, delay), return_exceptions=True)

    servers = [
        await asyncio.start_server(
            functools.partial(handle, port), LOOPBACK, port, reuse_address=True
        )
        for port in routes
    ]
    ready.set()
    await asyncio.gather(*(srv.serve_forever() for srv in servers))


def _relay_process(routes: dict[int, int], delay: float, ready: Any) -> None:
    asyncio.run(_relay_main(routes, delay, ready))


def start_relay(texts: dict[str, str], delay: float) -> tuple[Any, dict[str, str]]:
    """A process adding ``delay`` s each way in front of every target; the new targets."""
    import multiprocessing

    routes: dict[int, int] = {}
    moved: dict[str, str] = {}
    for proto, text in texts.items():
        port = int(text.rsplit(":", 1)[1].split("/")[0])
        front = free_port()
        routes[front] = port
        moved[proto] = f"{LOOPBACK}:{front}/{proto}"
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_relay_process, args=(routes, delay, ready), daemon=True)
    proc.start()
    if not ready.wait(10):
        proc.kill()
        raise BenchError("the latency relay did not start")
    return proc, moved


# --- measuring ----------------------------------------------------------------------------------


async def timed(targets: list[Any], options: Any) -> float:
    from mailgw.probe.runner import run_probes

    t0 = time.perf_counter()
    report = await run_probes(targets, options)
    seconds = time.perf_counter() - t0
    bad = [f"{r.target}: {r.state} {r.error or ''}" for r in report.results if r.state != "ok"]
    bad += [f"{r.target}: login {r.login}" for r in report.results if r.login == "failed"]
    if bad:
        raise BenchError("probes failed: " + "; ".join(bad))
    return seconds


async def rounds(
    targets: dict[str, Any], options: Any, count: int
) -> list[tuple[dict[str, float], float]]:
    """Per round: (proto -> seconds alone, seconds for all concurrently)."""
    for t in targets.values():  # warm-up: caches, first TLS sessions, Dovecot's login processes
        await timed([t], options)
    await timed(list(targets.values()), options)
    out: list[tuple[dict[str, float], float]] = []
    for rnd in range(1, count + 1):
        alone = {p: await timed([targets[p]], options) for p in round_order(list(targets), rnd)}
        together = await timed(list(targets.values()), options)
        out.append((alone, together))
        slowest = max(alone, key=alone.__getitem__)
        print(
            f"round {rnd}: sum {sum(alone.values()):.3f}s, slowest {alone[slowest]:.3f}s "
            f"({slowest}), concurrent {together:.3f}s, "
            f"ratio {together / alone[slowest]:.2f}",
            flush=True,
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="mailgw probe: 7 ports concurrently vs alone")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds")
    parser.add_argument(
        "--delay",
        type=float,
        default=10.0,
        help="one-way latency (ms) added by a relay in front of every service; 0: none",
    )
    parser.add_argument("--no-login", action="store_true", help="no login test in the probes")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 2
    from mailgw.probe.runner import ProbeOptions
    from mailgw.probe.targets import parse_target

    login = "no login" if args.no_login else "with login test"
    wan = f"{args.delay:g} ms each way added by a relay" if args.delay > 0 else "no added latency"
    print("probe: 7 services on loopback (mailgw serve: smtp, submission, smtps; Dovecot: imap,")
    print(f"  imaps, pop3, pop3s), TLS everywhere, {login}, {args.rounds} round(s);")
    print(f"  {wan}")
    print(f"  {machine_line()}")
    workdir = make_peer_dir("mailgw-bench-probe-")  # Dovecot's mail user must reach it
    serve: ServeProcess | None = None
    dovecot: DovecotInstance | None = None
    relay: Any = None
    try:
        certs = make_certs(workdir / "certs")
        serve, dovecot, texts = start_servers(workdir, certs)
        if args.delay > 0:
            relay, texts = start_relay(texts, args.delay / 1000)
        targets = {p: parse_target(t)[0] for p, t in texts.items()}
        options = ProbeOptions(
            deadline=DEADLINE,
            ca_file=certs.ca_cert,
            user=None if args.no_login else USER,
            password=None if args.no_login else PASSWORD,
        )
        results = asyncio.run(rounds(targets, options, args.rounds))
    except BenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        if relay is not None:
            relay.kill()
            relay.join(10)
        if serve is not None:
            with contextlib.suppress(ServeError):  # stop() kills it when it hangs
                serve.stop()
        if dovecot is not None:
            dovecot.cleanup()
        finish_workdir(workdir, args.keep)

    sums = [sum(a.values()) for a, _ in results]
    slowest = [max(a.values()) for a, _ in results]
    together = [c for _, c in results]
    ratios = [c / s for c, s in zip(together, slowest, strict=True)]
    med = statistics.median(ratios)
    met = med <= TARGET
    print(
        f"median: sum of 7 sequential {statistics.median(sums):.3f}s, slowest single "
        f"{statistics.median(slowest):.3f}s, 7 concurrent {statistics.median(together):.3f}s "
        f"(x{statistics.median(sums) / statistics.median(together):.1f} faster than sequential)"
    )
    print(
        f"median ratio concurrent/slowest single: {med:.2f} "
        f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}); "
        f"target <= {TARGET}: {'met' if met else 'NOT met'}"
    )
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
