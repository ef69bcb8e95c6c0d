"""Embedded defaults: the configuration used when no file is given.

Everything listens on loopback only, so every listener is marked trusted
(plaintext AUTH allowed) and STARTTLS is offered with a self-signed
certificate that ``mailgw serve`` makes on first start under
``data_dir/tls/``.  The loader never requires those files to exist here.
"""

from __future__ import annotations

import os
import socket
from importlib import resources
from pathlib import Path

from mailgw.config.schema import Config, ListenerConfig, TlsConfig

DATA_ENV = "MAILGW_DATA"
DEFAULT_DATA_DIR = "mailgw-data"
DEFAULT_DOMAINS: tuple[str, ...] = ("localhost",)

IMAP_LISTENER = ListenerConfig("imap", "imap", "127.0.0.1", 2143, "starttls", trusted=True)
DEFAULT_LISTENERS: tuple[ListenerConfig, ...] = (
    ListenerConfig("smtp", "smtp", "127.0.0.1", 2525, "starttls", trusted=True),
    ListenerConfig("submission", "submission", "127.0.0.1", 2587, "starttls", trusted=True),
    ListenerConfig("pop3", "pop3", "127.0.0.1", 2110, "starttls", trusted=True),
    IMAP_LISTENER,
)


def default_data_dir() -> Path:
    """``$MAILGW_DATA`` or ``./mailgw-data``, made absolute (not resolved)."""
    raw = os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR
    return Path(raw).expanduser().absolute()


def default_hostname() -> str:
    """The host's fully qualified name, or ``localhost``."""
    try:
        name = socket.getfqdn()
    except OSError:  # pragma: no cover - getfqdn swallows most errors itself
        name = ""
    return name or "localhost"


def default_tls(data_dir: Path) -> TlsConfig:
    tls_dir = data_dir / "tls"
    return TlsConfig(cert=tls_dir / "cert.pem", key=tls_dir / "key.pem")


def embedded_config() -> Config:
    """The configuration used without ``--config`` / ``$MAILGW_CONFIG``."""
    data_dir = default_data_dir()
    return Config(
        data_dir=data_dir,
        hostname=default_hostname(),
        domains=DEFAULT_DOMAINS,
        listeners=DEFAULT_LISTENERS,
        tls=default_tls(data_dir),
    )


def example_text() -> str:
    """The commented example configuration (``examples/office.yaml``)."""
    return resources.files("mailgw.config").joinpath("example.yaml").read_text(encoding="utf-8")
