"""A private DNS server for MX tests: Debian's dnsmasq on 127.0.0.1, a free high port.

Theory of operation
-------------------
:class:`DnsmasqServer` writes a dnsmasq configuration with ``no-resolv``,
``no-hosts`` and ``local=/<zone>/`` for each test zone (so dnsmasq answers
names under it from the configuration only and says NXDOMAIN for the rest,
RFC 8020), ``mx-host`` lines (a null MX is ``mx-host=domain,.,0``, RFC 7505)
and ``host-record`` lines (A and AAAA).  A ``broken`` zone is forwarded to a
closed loopback port, so lookups under it time out: the "temporary DNS
failure" case.  It listens on UDP and TCP ``127.0.0.1:<port>`` only
(``bind-interfaces``), runs in the foreground under this process
(``keep-in-foreground``), logs queries to a file in its directory and is
stopped by :meth:`stop` or the context manager.

The port is probed free for UDP and TCP; if dnsmasq cannot bind it the start
is retried on another.  Missing dnsmasq (Debian package ``dnsmasq-base``)
raises :class:`tests.interop.peers.PeerUnavailable`; tests turn that into a
skip (a failure under ``CI=true`` for tests marked ``interop``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import dns.asyncresolver
import dns.exception
import dns.resolver

from mailgw.relay.dns import make_resolver
from tests.interop.peers import LOOPBACK, PeerError, PeerUnavailable

DNSMASQ = "/usr/sbin/dnsmasq"
START_ATTEMPTS = 3
START_TIMEOUT = 10.0


def dnsmasq_missing() -> str | None:
    path = shutil.which("dnsmasq") or DNSMASQ
    if not os.access(path, os.X_OK):
        return "dnsmasq not found (Debian package dnsmasq-base)"
    return None


def free_udp_tcp_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP a moment ago."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((LOOPBACK, 0))
            port = int(u.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((LOOPBACK, port))
                except OSError:
                    continue
                return port
    raise PeerError("no free UDP+TCP port on 127.0.0.1")


class DnsmasqServer:
    """dnsmasq serving fixed records for test zones.

    ``mx``: domain -> [(preference, exchange)] (exchange ``"."`` for a null MX);
    ``hosts``: name -> [addresses] (IPv4 and/or IPv6); ``zones``: names answered
    locally (NXDOMAIN for unknown names under them); ``broken``: zones whose
    lookups time out.
    """

    def __init__(
        self,
        *,
        mx: Mapping[str, Sequence[tuple[int, str]]] | None = None,
        hosts: Mapping[str, Sequence[str]] | None = None,
        zones: Sequence[str] = ("test",),
        broken: Sequence[str] = (),
    ) -> None:
        path = shutil.which("dnsmasq") or DNSMASQ
        reason = dnsmasq_missing()
        if reason is not None:
            raise PeerUnavailable(reason)
        self.binary = path
        self.mx = {k: list(v) for k, v in (mx or {}).items()}
        self.hosts = {k: list(v) for k, v in (hosts or {}).items()}
        self.zones = tuple(zones)
        self.broken = tuple(broken)
        self.dir = Path(tempfile.mkdtemp(prefix="mailgw-dnsmasq-"))
        self.conf_path = self.dir / "dnsmasq.conf"
        self.log_path = self.dir / "dnsmasq.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    # --- configuration --------------------------------------------------------------

    def _config(self, port: int, dead_port: int) -> str:
        lines = [
            "# written by tests/interop/dnsserver.py",
            f"port={port}",
            f"listen-address={LOOPBACK}",
            "bind-interfaces",
            "no-resolv",
            "no-hosts",
            "no-poll",
            "pid-file=",
            "cache-size=0",
            "log-queries",
            f"log-facility={self.log_path}",
        ]
        if os.geteuid() == 0:
            lines.append("user=root")
        lines += [f"local=/{zone}/" for zone in self.zones]
        lines += [f"server=/{zone}/{LOOPBACK}#{dead_port}" for zone in self.broken]
        for domain, records in self.mx.items():
            lines += [f"mx-host={domain},{exchange},{pref}" for pref, exchange in records]
        for name, addresses in self.hosts.items():
            lines.append(f"host-record={name}," + ",".join(addresses))
        return "\n".join(lines) + "\n"

    # --- life cycle -----------------------------------------------------------------

    def start(self) -> Self:
        errors: list[str] = []
        for _ in range(START_ATTEMPTS):
            self.port = free_udp_tcp_port()
            dead_port = free_udp_tcp_port()  # nothing listens there: lookups time out
            self.conf_path.write_text(self._config(self.port, dead_port))
            self.proc = subprocess.Popen(
                [self.binary, "--keep-in-foreground", f"--conf-file={self.conf_path}"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if self._wait_ready():
                return self
            errors.append(self._failure())
            self.stop()
        raise PeerError("dnsmasq did not start:\n" + "\n---\n".join(errors))

    def _wait_ready(self) -> bool:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [LOOPBACK]
        resolver.port = self.port
        resolver.lifetime = 0.5
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                resolver.resolve(f"probe.{self.zones[0]}", "A", search=False)
                return True
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                return True
            except dns.exception.DNSException:
                time.sleep(0.05)
        return False

    def _failure(self) -> str:
        err = b""
        if self.proc is not None and self.proc.poll() is not None and self.proc.stderr:
            err = self.proc.stderr.read()
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"exit {self.proc.returncode if self.proc else None}: {err.decode()}\n{log}"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    # --- use ------------------------------------------------------------------------

    def resolver(self, lifetime: float = 2.0) -> dns.asyncresolver.Resolver:
        """A mailgw resolver (``mailgw.relay.dns.make_resolver``) asking only this server."""
        return make_resolver([LOOPBACK], self.port, timeout=lifetime / 2, lifetime=lifetime)

    def log_text(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return self.log_path.read_text(errors="replace")
        return ""
