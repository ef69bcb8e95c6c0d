"""End-to-end helpers: ``mailgw serve`` as a real process, driven by real clients.

* :func:`make_certs` writes a trustme CA and a server certificate for
  ``localhost``/``127.0.0.1`` as files (:class:`CertFiles`).
* :class:`ServeProcess` writes a YAML configuration (listeners on port 0 by
  default: the real ports are read back from the ``listening: NAME (PROTO) on
  HOST:PORT`` lines), starts ``python -m mailgw --config FILE serve`` with
  ``MAILGW_ARGON2_FAST=1``, waits (bounded) until every listener is up and
  shows the server's output when it is not.  ``port(name)``, ``add_user``,
  ``passwd``, ``signal``, ``stop`` (SIGTERM, returns the exit code), ``kill``
  (SIGKILL), ``restart`` (same data directory, same config), ``log()``.
* :func:`run_mailgw` runs any other ``mailgw`` command to completion.
* Small client helpers: :func:`smtp_send`, :func:`pop3_login`,
  :func:`pop3_fetch_all`, :func:`make_message`, :func:`maildir_files`,
  :func:`trace_of` (checks a stored message is our trace headers + exactly
  the bytes sent), :func:`listening_socket` (a taken port).
* :func:`require_tool`: skip when a Debian peer is missing, fail under CI=true.

Passwords go to ``mailgw user`` through ``$MAILGW_PASSWORD``, never argv.
Every address is loopback.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import poplib
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import trustme
import yaml

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
DOMAIN = "example.org"
HOSTNAME = "mx.example.org"
READY_TIMEOUT = 30.0  # seconds for serve to bind every listener
STOP_TIMEOUT = 40.0  # serve drains for up to 30 s on SIGTERM
CLI_TIMEOUT = 60.0


# --- certificates ------------------------------------------------------------------------


@dataclass
class CertFiles:
    """A CA and a server certificate for localhost and 127.0.0.1, as PEM files."""

    ca: trustme.CA
    ca_cert: Path  # for clients
    cert: Path  # server chain
    key: Path  # server key (0600)
    leaf_der: bytes  # the server certificate, DER, to compare with getpeercert(True)

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))


def _pem_to_der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))


def make_certs(directory: Path, tag: str = "a") -> CertFiles:
    """A new CA (``tag`` names its files) and a server certificate it issued."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name=f"mailgw test CA {tag}")
    # a subject CN too: fetchmail insists on one even when a SAN matches
    issued = ca.issue_cert("localhost", LOOPBACK, "::1", HOSTNAME, common_name="localhost")
    ca_cert = directory / f"ca-{tag}.pem"
    cert = directory / f"cert-{tag}.pem"
    key = directory / f"key-{tag}.pem"
    ca.cert_pem.write_to_path(str(ca_cert))
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    key.write_bytes(issued.private_key_pem.bytes())
    key.chmod(0o600)
    leaf = _pem_to_der(issued.cert_chain_pems[0].bytes())
    return CertFiles(ca, ca_cert, cert, key, leaf)


def install_cert(source: CertFiles, cert: Path, key: Path) -> None:
    """Replace ``cert``/``key`` with ``source``'s files atomically (rename each)."""
    for src, dst in ((source.cert, cert), (source.key, key)):
        tmp = dst.with_name(dst.name + ".new")
        tmp.write_bytes(src.read_bytes())
        tmp.chmod(0o600)
        os.replace(tmp, dst)


# --- listeners and the configuration ------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    name: str
    protocol: str  # smtp | submission | pop3
    tls: str = "none"  # none | starttls | implicit
    trusted: bool = False
    port: int = 0
    address: str = LOOPBACK

    def as_yaml(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "protocol": self.protocol,
            "address": self.address,
            "port": self.port,
            "tls": self.tls,
            "trusted": self.trusted,
        }


DEFAULT_LISTENERS: tuple[Listener, ...] = (
    Listener("smtp", "smtp", "starttls"),
    Listener("submission", "submission", "starttls"),
    Listener("pop3", "pop3", "starttls"),
)

# failed logins in tests should not make the suite wait
FAST_LIMITS: dict[str, Any] = {"auth_failure_delay": 0.01, "auth_failure_max_delay": 0.05}


def subprocess_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every mailgw subprocess: cheap argon2, this checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MAILGW_CONFIG", "MAILGW_DATA", "MAILGW_PASSWORD")
    }
    env["MAILGW_ARGON2_FAST"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def run_mailgw(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = CLI_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """``python -m mailgw ARGS`` to completion (stdout/stderr captured as text)."""
    return subprocess.run(
        [sys.executable, "-m", "mailgw", *args],
        env=subprocess_env(env),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


class ServeError(AssertionError):
    """serve did not come up, or did not stop as asked; the message holds its output."""


@dataclass
class ServeProcess:
    """``mailgw serve`` in a subprocess; a context manager (kills it on exit)."""

    workdir: Path
    certs: CertFiles | None = None
    listeners: Sequence[Listener] = DEFAULT_LISTENERS
    data_dir: Path | None = None
    domains: Sequence[str] = (DOMAIN,)
    extra_config: Mapping[str, Any] = field(default_factory=dict)
    verbose: bool = False
    ready_timeout: float = READY_TIMEOUT

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.data_dir is None:
            self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "mailgw.yaml"
        # the server's certificate files: copies, so a test can replace them for SIGHUP
        self.cert_path = self.workdir / "tls" / "cert.pem"
        self.key_path = self.workdir / "tls" / "key.pem"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}
        self.runs = 0
        self._out: Path | None = None
        self._err: Path | None = None
        self.returncode: int | None = None

    # --- configuration ---------------------------------------------------------------

    @property
    def data(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir

    def config_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "data_dir": str(self.data),
            "hostname": HOSTNAME,
            "domains": list(self.domains),
            "limits": dict(FAST_LIMITS),
            "listeners": [lst.as_yaml() for lst in self.listeners],
        }
        if self.certs is not None:
            doc["tls"] = {"cert": str(self.cert_path), "key": str(self.key_path)}
        doc.update(self.extra_config)
        return doc

    def write_config(self) -> Path:
        if self.certs is not None and not self.cert_path.exists():
            self.cert_path.parent.mkdir(parents=True, exist_ok=True)
            install_cert(self.certs, self.cert_path, self.key_path)
        self.config_path.write_text(yaml.safe_dump(self.config_dict(), sort_keys=False))
        return self.config_path

    # --- process ---------------------------------------------------------------------

    def start(self) -> ServeProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.write_config()
        self.runs += 1
        self._out = self.workdir / f"serve-{self.runs}.stdout"
        self._err = self.workdir / f"serve-{self.runs}.stderr"
        args = [sys.executable, "-m", "mailgw", "--config", str(self.config_path)]
        if self.verbose:
            args.append("-v")
        args.append("serve")
        with open(self._out, "wb") as out, open(self._err, "wb") as err:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=subprocess_env(),
                cwd=self.workdir,
            )
        self.returncode = None
        self._wait_ready()
        return self

    def _listening(self) -> dict[str, int]:
        assert self._out is not None
        ports: dict[str, int] = {}
        for line in self._out.read_text(errors="replace").splitlines():
            if line.startswith("listening: "):
                # listening: NAME (PROTO) on HOST:PORT
                name = line.split()[1]
                ports.setdefault(name, int(line.rsplit(":", 1)[1]))
        return ports

    def _wait_ready(self) -> None:
        assert self.proc is not None
        wanted = {lst.name for lst in self.listeners}
        deadline = time.monotonic() + self.ready_timeout
        while True:
            ports = self._listening()
            if wanted <= ports.keys():
                self.ports = ports
                return
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise ServeError(
                    f"serve exited with {self.proc.returncode} before listening\n{self.log()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise ServeError(
                    f"serve did not listen on {sorted(wanted - ports.keys())} within "
                    f"{self.ready_timeout} s\n{self.log()}"
                )
            time.sleep(0.02)

    def port(self, name: str) -> int:
        return self.ports[name]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None and self.proc.poll() is None, "serve is not running"
        self.proc.send_signal(sig)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ServeError(
                f"serve did not stop within {timeout} s of SIGTERM\n{self.log()}"
            ) from None
        return self.returncode

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.returncode = self.proc.wait(30)

    def restart(self) -> ServeProcess:
        """Start again on the same data directory (after stop or kill)."""
        if self.running():
            self.stop()
        return self.start()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()

    # --- output ----------------------------------------------------------------------

    def stdout(self) -> str:
        return self._out.read_text(errors="replace") if self._out else ""

    def stderr(self) -> str:
        return self._err.read_text(errors="replace") if self._err else ""

    def log(self) -> str:
        """This run's stdout and stderr."""
        return f"--- stdout ---\n{self.stdout()}--- stderr ---\n{self.stderr()}"

    def all_logs(self) -> str:
        """stdout and stderr of every run so far."""
        parts = []
        for n in range(1, self.runs + 1):
            for suffix in ("stdout", "stderr"):
                path = self.workdir / f"serve-{n}.{suffix}"
                if path.exists():
                    parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 20.0) -> None:
        """Until ``text`` occurs ``count`` times in stderr (bounded)."""
        deadline = time.monotonic() + timeout
        while self.stderr().count(text) < count:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServeError(f"serve exited while waiting for {text!r}\n{self.log()}")
            if time.monotonic() > deadline:
                raise ServeError(f"{text!r} x{count} not logged within {timeout} s\n{self.log()}")
            time.sleep(0.02)

    def wait_refusing(self, name: str, timeout: float = 20.0) -> None:
        """Until the listener ``name`` refuses new connections (it was closed)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((LOOPBACK, self.port(name)), timeout=2):
                    pass
            except OSError:
                return
            if time.monotonic() > deadline:
                raise ServeError(f"{name} still accepts connections\n{self.log()}")
            time.sleep(0.02)

    # --- the CLI against this server's configuration ------------------------------------

    def cli(
        self, *args: str, env: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if not self.config_path.exists():
            self.write_config()
        proc = run_mailgw(["--config", str(self.config_path), *args], env=env)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"mailgw {' '.join(args)} exited {proc.returncode}\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def add_user(self, name: str, password: str) -> None:
        self.cli("user", "add", name, env={"MAILGW_PASSWORD": password})

    def passwd(self, name: str, password: str) -> None:
        self.cli("user", "passwd", name, env={"MAILGW_PASSWORD": password})

    def maildir(self, user: str) -> Path:
        return self.data / "mail" / user / "Maildir"


# --- clients -------------------------------------------------------------------------------


def make_message(
    subject: str,
    body: bytes,
    *,
    sender: str = "sender@remote.test",
    to: str = f"alice@{DOMAIN}",
    message_id: str | None = None,
    extra_headers: Sequence[str] = (),
) -> bytes:
    """A message with CRLF line endings, ready for smtplib (no dot-stuffing needed)."""
    headers = [f"From: {sender}", f"To: {to}", f"Subject: {subject}"]
    if message_id is not None:
        headers.append(f"Message-ID: {message_id}")
    headers.extend(extra_headers)
    text = "\r\n".join(headers).encode() + b"\r\n\r\n" + body
    if not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text


def smtp_send(
    port: int,
    message: bytes,
    *,
    sender: str = "sender@remote.test",
    rcpts: Sequence[str] = (f"alice@{DOMAIN}",),
    starttls: ssl.SSLContext | None = None,
    login: tuple[str, str] | None = None,
    mail_options: Sequence[str] = (),
    timeout: float = 30.0,
) -> None:
    """Send one message; raises on any refusal."""
    with smtplib.SMTP(LOOPBACK, port, local_hostname="client.test", timeout=timeout) as smtp:
        if starttls is not None:
            smtp.starttls(context=starttls)
        if login is not None:
            smtp.login(*login)
        refused = smtp.sendmail(sender, list(rcpts), message, list(mail_options))
        assert refused == {}, refused


def pop3_login(
    port: int, user: str, password: str, ctx: ssl.SSLContext | None, timeout: float = 30.0
) -> poplib.POP3:
    """A logged-in POP3 session (STLS first when ``ctx`` is given)."""
    pop = poplib.POP3(LOOPBACK, port, timeout=timeout)
    try:
        if ctx is not None:
            pop.stls(ctx)
        pop.user(user)
        pop.pass_(password)
    except BaseException:
        with contextlib.suppress(Exception):
            pop.close()
        raise
    return pop


def pop3_fetch_all(pop: poplib.POP3) -> dict[str, bytes]:
    """UIDL -> the message bytes (CRLF line ends, un-stuffed) of every message."""
    result: dict[str, bytes] = {}
    _, lines, _ = pop.uidl()
    for line in lines:
        num, uid = line.decode().split()
        _, msg_lines, _ = pop.retr(int(num))
        result[uid] = b"\r\n".join(msg_lines) + b"\r\n"
    return result


def maildir_files(maildir: Path) -> list[Path]:
    """Every message file in new/ and cur/ (not tmp/)."""
    return sorted(p for sub in ("new", "cur") for p in (maildir / sub).glob("*") if p.is_file())


TRACE_HEADERS = (b"Received:", b"Return-Path:", b"Delivered-To:")


def trace_of(stored: bytes, sent: bytes) -> bytes:
    """The trace headers mailgw prepended to ``sent`` in ``stored``.

    Asserts that ``stored`` ends with exactly the bytes sent and that what comes
    before is only ``Received:``/``Return-Path:``/``Delivered-To:`` lines (and
    their folded continuations).
    """
    assert stored.endswith(sent), "the stored message does not end with the bytes sent"
    trace = stored[: len(stored) - len(sent)]
    assert trace == b"" or trace.endswith(b"\r\n"), trace[-80:]
    for line in trace.split(b"\r\n")[:-1]:
        assert line.startswith((*TRACE_HEADERS, b" ", b"\t")), line
    return trace


@contextlib.contextmanager
def listening_socket() -> Iterator[int]:
    """A loopback TCP port that is taken (listening) for the duration."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        s.listen(1)
        yield int(s.getsockname()[1])


# --- real peers ------------------------------------------------------------------------------


def require_tool(path: str, package: str) -> None:
    """Skip when ``path`` is not an executable (fail instead when ``CI=true``)."""
    if os.access(path, os.X_OK):
        return
    reason = f"{path} is not installed (Debian package {package})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and an interop peer is missing: {reason}")
    pytest.skip(reason)


# --- IMAP (appended for the IMAP interop tests) ------------------------------------------------

IMAP_LISTENER = Listener("imap", "imap", "starttls")
IMAPS_LISTENER = Listener("imaps", "imap", "implicit")


def imap_login(
    port: int,
    user: str,
    password: str,
    ctx: ssl.SSLContext | None,
    *,
    implicit: bool = False,
    timeout: float = 30.0,
) -> imaplib.IMAP4:
    """A logged-in IMAP session: STARTTLS first when ``ctx`` is given (or implicit
    TLS with ``implicit=True``), plaintext LOGIN otherwise (a trusted listener)."""
    conn: imaplib.IMAP4
    if implicit:
        conn = imaplib.IMAP4_SSL(LOOPBACK, port, ssl_context=ctx, timeout=timeout)
    else:
        conn = imaplib.IMAP4(LOOPBACK, port, timeout=timeout)
    try:
        if ctx is not None and not implicit:
            conn.starttls(ssl_context=ctx)
        conn.login(user, password)
    except BaseException:
        with contextlib.suppress(Exception):
            conn.shutdown()
        raise
    return conn


def imap_ok(result: tuple[str, list[Any]], what: str = "") -> list[Any]:
    """The data of an imaplib ``(typ, data)`` result; AssertionError unless typ is OK."""
    typ, data = result
    assert typ == "OK", f"{what}: {typ} {data!r}"
    return data
