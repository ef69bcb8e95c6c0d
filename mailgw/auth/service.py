"""The login service the SMTP, POP3 and IMAP sessions call.

Theory of operation
-------------------
``authenticate(login, password, remote_ip)`` returns the canonical user name
or None.  Steps:

1. ``normalize_login``: lower-case; ``user@domain`` is accepted only when
   ``domain`` is one of ours (contracts.md: ``alice@<local domain>`` is user
   ``alice``); the rest must be a valid user name.
2. The password is checked in a worker thread (``asyncio.to_thread``): argon2
   costs tens of milliseconds and 64 MiB and must not stall the event loop.
   An unknown or invalid login still costs one dummy verification, so timing
   does not reveal which users exist.
3. A SASL authorization identity (RFC 4616 section 2, RFC 4422 section 3.4.1)
   that names anyone but the authenticated user is a failure: mailgw has no
   proxy-authorization.
4. On failure the per-address limiter makes this session wait
   (``await limiter.failed(ip)``); on success the address is reset.

One log line per attempt: login (repr, truncated: it is client-controlled),
address, and the result.  Never the password.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from mailgw.auth.limiter import AuthLimiter
from mailgw.auth.passwd import USERNAME_RE, UserDB
from mailgw.errors import AuthError

log = logging.getLogger("mailgw.auth")


def _norm_domain(domain: str) -> str:
    return domain.strip().rstrip(".").lower()


def normalize_login(login: str, domains: Iterable[str]) -> str | None:
    """``"Alice"``/``"alice@office.lan"`` -> ``"alice"``; None if not one of ours."""
    name = login.lower()
    if "@" in name:
        local, _, domain = name.rpartition("@")
        if _norm_domain(domain) not in {_norm_domain(d) for d in domains}:
            return None
        name = local
    return name if USERNAME_RE.match(name) else None


def _shown(login: str) -> str:
    return repr(login if len(login) <= 64 else login[:64] + "...")


class Authenticator:
    """Checks logins against a ``UserDB`` with a shared ``AuthLimiter``."""

    def __init__(self, userdb: UserDB, limiter: AuthLimiter, domains: Iterable[str]) -> None:
        self.userdb = userdb
        self.limiter = limiter
        self.domains = tuple(_norm_domain(d) for d in domains)

    async def authenticate(
        self, login: str, password: str, remote_ip: str, *, authzid: str = ""
    ) -> str | None:
        """The canonical user name if ``login``/``password`` is right, else None.

        ``authzid``: the SASL authorization identity, ``""`` when none was sent.
        """
        user = normalize_login(login, self.domains)
        try:
            ok = await asyncio.to_thread(self.userdb.verify, user or "", password)
        except AuthError as exc:  # broken users file: say so, do not count it
            log.error("auth: %s from %s: user database unusable: %s", _shown(login), remote_ip, exc)
            return None
        if ok and authzid and normalize_login(authzid, self.domains) != user:
            log.info(
                "auth: %s from %s: failed (may not act as %s)",
                _shown(login),
                remote_ip,
                _shown(authzid),
            )
            ok = False
        elif ok:
            self.limiter.succeeded(remote_ip)
            log.info("auth: %s from %s: ok", user, remote_ip)
            return user
        else:
            log.info("auth: %s from %s: failed", _shown(login), remote_ip)
        await self.limiter.failed(remote_ip)
        return None


__all__ = ["Authenticator", "normalize_login"]
