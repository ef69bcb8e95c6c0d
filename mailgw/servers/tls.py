"""Server-side TLS: one SSLContext per process, reloadable in place.

``TlsProvider.context`` is handed to every TLS listener (implicit TLS and
STARTTLS).  ``reload()`` calls ``load_cert_chain`` again on the same context
object, so new handshakes use the new certificate while connections already
open are left alone (SIGHUP in ``serve``).

``starttls_injection(buffered)`` is the rule of DESIGN.md "STARTTLS, all
protocols": if the client sent anything after the STARTTLS/STLS command
before the handshake, the connection is closed instead of upgraded
(CVE-2011-0411 class; RFC 3207 section 4.2, RFC 2595 section 3.1).
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from mailgw.errors import ConfigError

log = logging.getLogger("mailgw.tls")


class TlsProvider:
    def __init__(self, cert: Path, key: Path) -> None:
        self.cert = cert
        self.key = key
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.options |= ssl.OP_NO_COMPRESSION
        self.context = ctx
        self.reload()

    def reload(self) -> None:
        try:
            self.context.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load certificate {self.cert} / key {self.key}: {exc}", key="tls"
            ) from exc
        log.info("tls certificate loaded from %s", self.cert)


def starttls_injection(buffered: bytes | int) -> bool:
    """True when plaintext bytes are waiting after a STARTTLS command."""
    return bool(buffered)
