"""The configuration schema: frozen dataclasses, nothing else.

The YAML loader (``loader.py``) turns a file into a ``Config``; the embedded
defaults (``defaults.py``) build one without any file.  Everything else in
mailgw reads these objects and never sees YAML.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Protocol = Literal["smtp", "submission", "pop3", "imap"]
TlsMode = Literal["none", "starttls", "implicit"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TlsConfig:
    """The certificate and key used by every TLS listener."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class ListenerConfig:
    """One socket mailgw listens on.

    ``protocol``: smtp (MX-style, port 25), submission (587/465: AUTH
    required before MAIL), pop3, imap.
    ``tls``: none (plaintext only), starttls (STARTTLS/STLS offered),
    implicit (TLS from the first byte: 465, 995, 993).
    ``trusted``: the listener is on a trusted LAN segment, so plaintext AUTH
    and LOGIN are allowed on it.  Without it, authentication needs TLS.
    """

    name: str
    protocol: Protocol
    address: str
    port: int
    tls: TlsMode = "none"
    trusted: bool = False


@dataclass(frozen=True)
class LimitsConfig:
    max_message_size: int = 50 * 1024 * 1024  # SMTP SIZE, bytes
    max_recipients: int = 100
    smtp_line_length: int = 4096  # command line, bytes (RFC 5321 4.5.3.1.4 says 512 minimum)
    pop3_line_length: int = 4096
    bad_commands: int = 20  # errors before the connection is closed
    pop3_idle_timeout: int = 600  # seconds; RFC 1939 section 3 asks for 10 minutes at least
    smtp_idle_timeout: int = 300  # RFC 5321 4.5.3.2.7
    imap_idle_timeout: int = 1800  # seconds, IDLE included; RFC 3501 5.4: 30 minutes at least
    imap_line_length: int = 65536  # command line after login, bytes (8 KiB before login)
    imap_literal_size: int = 65536  # literals other than APPEND messages, bytes
    auth_failure_delay: float = 1.0  # first failure delay, doubling per failure
    auth_failure_max_delay: float = 30.0
    auth_failure_window: int = 900  # seconds after which an address's failures are forgotten


RouteKind = Literal["smarthost", "mx"]

DAY = 86400.0
HOUR = 3600.0


@dataclass(frozen=True)
class RouteConfig:
    """One way out for relayed mail (``relay.routes[]``).

    ``kind``: smarthost (``hosts`` in order, the next one when a host cannot
    be reached: failover) or mx (direct delivery: MX records of the recipient
    domain, then A/AAAA).  ``domains``: the recipient domains this route is
    for; empty means the default route (at most one).  ``tls``: starttls or
    implicit (TLS from the first byte, port 465) or none; ``tls_required``
    (default true) refuses to send without TLS; ``tls_verify`` (default true)
    checks the certificate and host name, against ``ca_file`` if given.  The
    password is never inline: ``password_file`` or ``password_env``.
    """

    name: str
    kind: RouteKind = "smarthost"
    hosts: tuple[str, ...] = ()
    port: int = 587
    tls: TlsMode = "starttls"
    tls_required: bool = True
    tls_verify: bool = True
    ca_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    domains: tuple[str, ...] = ()
    max_per_connection: int = 100  # messages sent over one SMTP connection
    concurrency: int = 4  # connections at once per destination


@dataclass(frozen=True)
class RelayConfig:
    """The outbound queue (``relay:``).  Durations are seconds."""

    routes: tuple[RouteConfig, ...] = ()
    lifetime: float = 5 * DAY  # then the message bounces: "delivery time expired"
    retry_min: float = 300.0  # first retry; doubles per attempt, +-20% jitter
    retry_max: float = 4 * HOUR  # cap of the retry interval
    delay_warning: float | None = 4 * HOUR  # one "delayed" DSN after this; None: never
    spool_dir: Path | None = None  # None: data_dir / "queue" (the loader fills it in)
    nameservers: tuple[str, ...] = ()  # resolver for MX routes; empty: the system's
    resolver_port: int = 53
    postmaster: str | None = None  # gets notices (route held, ...); None: no notices
    notice_interval: float = HOUR  # at most one notice per reason per interval


@dataclass(frozen=True)
class Config:
    """The whole configuration.  Paths are absolute once loaded."""

    data_dir: Path
    hostname: str
    domains: tuple[str, ...]
    listeners: tuple[ListenerConfig, ...]
    tls: TlsConfig | None = None
    # address (lower-case "local@domain") -> targets (user names or addresses)
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # domain -> target (a user name or address) for unknown local parts
    catch_all: dict[str, str] = field(default_factory=dict)
    # networks whose clients may relay without AUTH; empty by default
    relay_networks: tuple[IPNetwork, ...] = ()
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    users_file: Path | None = None  # default: data_dir / "users.passwd"
    log_level: str = "info"
    relay: RelayConfig | None = None  # None: no relaying runner in serve
    source: str = "<embedded defaults>"  # the file it came from, for messages

    @property
    def passwd_path(self) -> Path:
        return self.users_file if self.users_file is not None else self.data_dir / "users.passwd"

    @property
    def queue_dir(self) -> Path:
        """The relay spool: ``relay.spool_dir``, default ``data_dir / "queue"``."""
        if self.relay is not None and self.relay.spool_dir is not None:
            return self.relay.spool_dir
        return self.data_dir / "queue"

    @property
    def mail_root(self) -> Path:
        """Users' homes live here: ``mail_root / user / "Maildir"``."""
        return self.data_dir / "mail"
