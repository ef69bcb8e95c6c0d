"""What every listener of one ``serve`` process shares.

Built once by ``mailgw.servers.app`` and passed to each protocol adapter;
SIGHUP reloads the user database and the certificate in place, so adapters
hold this object, not copies of its parts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from mailgw.auth.limiter import AuthLimiter
from mailgw.auth.passwd import UserDB
from mailgw.auth.service import Authenticator
from mailgw.config.schema import Config, ListenerConfig
from mailgw.relay.spool import Spool
from mailgw.servers.tls import TlsProvider
from mailgw.store import Store


@dataclass
class ServerContext:
    config: Config
    store: Store
    userdb: UserDB
    limiter: AuthLimiter
    authenticator: Authenticator
    tls: TlsProvider | None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("mailgw"))
    # transactions in flight (SMTP DATA being stored, POP3 UPDATE); SIGTERM waits for them
    active: set[object] = field(default_factory=set)
    # open client transports; closed once the in-flight work has drained
    connections: set[asyncio.BaseTransport] = field(default_factory=set)
    # users with an open POP3 maildrop (RFC 1939 section 8: exclusive access)
    maildrop_locks: set[str] = field(default_factory=set)
    # the outbound queue (config.relay set): SMTP enqueues relayed mail here, then wakes the runner
    spool: Spool | None = None
    relay_wake: Callable[[], None] | None = None

    def auth_allowed_plaintext(self, listener: ListenerConfig) -> bool:
        """AUTH/LOGIN without TLS only on listeners marked trusted (DESIGN: security)."""
        return listener.trusted

    @classmethod
    def build(cls, config: Config) -> ServerContext:
        limits = config.limits
        userdb = UserDB(config.passwd_path)
        limiter = AuthLimiter(
            limits.auth_failure_delay, limits.auth_failure_max_delay, limits.auth_failure_window
        )
        tls = TlsProvider(config.tls.cert, config.tls.key) if config.tls is not None else None
        return cls(
            config=config,
            store=Store(config.mail_root),
            userdb=userdb,
            limiter=limiter,
            authenticator=Authenticator(userdb, limiter, config.domains),
            tls=tls,
        )
