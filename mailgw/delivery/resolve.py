"""Recipient resolution: envelope address -> local users or relay targets.

Theory of operation
-------------------
``RecipientResolver.resolve(address)`` answers one RCPT TO:

1. The domain is compared case-insensitively (and in IDNA A-label form) with
   ``config.domains``.  Not a local domain: the address is a relay candidate
   (``Resolution.remote``); whether the session may relay is the server's
   policy, not ours.
2. In a local domain, the local part (unquoted, lower-cased) is looked up:
   ``config.aliases["local@domain"]`` first, then a user of that name in the
   user database, then ``config.catch_all[domain]``.
3. Alias and catch-all targets are user names (no ``@``) or addresses; an
   address is resolved again by the same rules (aliases of aliases), with a
   depth limit and a visited set so that alias loops end.  Targets outside
   the local domains are reported in ``remote``.  A user name that is not in
   the user database is dropped (logged): it cannot be delivered to.
4. ``postmaster`` (any case, with or without a domain: RFC 5321 section 4.5.1
   requires ``RCPT TO:<Postmaster>`` to work) always resolves when anything
   can take it: alias, else user ``postmaster``, else the domain's catch-all,
   else an alias ``postmaster@<first local domain>``; only when none exists
   is it unknown.
5. Users and remote targets are de-duplicated, first occurrence kept.

Blocking only in the sense that ``UserDB.exists`` may stat/re-read the
passwd-file (small); callers on the event loop can call it directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

from mailgw.config.schema import Config
from mailgw.protocols.smtp.address import (
    AddressError,
    lookup_key,
    normalize_domain,
    split_address,
)

log = logging.getLogger("mailgw.delivery")

MAX_DEPTH = 10
POSTMASTER = "postmaster"

ResolutionKind = Literal["local", "nonlocal", "unknown"]


class _Users(Protocol):
    def exists(self, user: str) -> bool: ...


@dataclass(frozen=True)
class Resolution:
    """Where mail for ``address`` goes.

    ``users``: local user names (mailboxes); ``remote``: addresses outside the
    local domains (need relaying); ``local_domain``: the address itself is in
    a local domain.
    """

    address: str
    users: tuple[str, ...] = ()
    remote: tuple[str, ...] = ()
    local_domain: bool = True

    @property
    def kind(self) -> ResolutionKind:
        """``nonlocal`` whenever relaying is needed (also for a mixed alias)."""
        if self.remote:
            return "nonlocal"
        if self.users:
            return "local"
        return "unknown"


class RecipientResolver:
    def __init__(self, config: Config, userdb: _Users) -> None:
        self._userdb = userdb
        self.domains: tuple[str, ...] = tuple(normalize_domain(d) for d in config.domains)
        self._domain_set = frozenset(self.domains)
        self._aliases: dict[str, tuple[str, ...]] = {}
        for key, targets in config.aliases.items():
            self._aliases[self._alias_key(key)] = tuple(targets)
        self._catch_all = {normalize_domain(d): t for d, t in config.catch_all.items()}

    @staticmethod
    def _alias_key(address: str) -> str:
        try:
            local, domain = split_address(address)
        except AddressError:
            return address.lower()
        return f"{lookup_key(local)}@{domain}" if domain else lookup_key(local)

    def is_local_domain(self, domain: str) -> bool:
        try:
            return normalize_domain(domain) in self._domain_set
        except AddressError:
            return False

    def resolve(self, address: str) -> Resolution:
        """Resolve one RCPT TO address (no angle brackets needed)."""
        try:
            local, domain = split_address(address)
        except AddressError:
            return Resolution(address)
        if not local:
            return Resolution(address)
        if not domain:
            # Only "postmaster" may come without a domain (RFC 5321 4.5.1).
            if lookup_key(local) != POSTMASTER or not self.domains:
                return Resolution(address)
            domain = self.domains[0]
        if domain not in self._domain_set:
            return Resolution(address, remote=(address,), local_domain=False)
        users: list[str] = []
        remote: list[str] = []
        self._expand_local(lookup_key(local), domain, users, remote, set(), 0)
        return Resolution(address, tuple(users), tuple(remote))

    # --- expansion ---------------------------------------------------------------

    def _add(self, items: list[str], item: str) -> None:
        if item not in items:
            items.append(item)

    def _expand_target(
        self, target: str, users: list[str], remote: list[str], seen: set[str], depth: int
    ) -> None:
        target = target.strip()
        if "@" not in target:
            name = target.lower()
            if self._userdb.exists(name):
                self._add(users, name)
            else:
                log.warning("alias target %r is not a user; ignored", target)
            return
        try:
            local, domain = split_address(target)
        except AddressError:
            log.warning("alias target %r is not a valid address; ignored", target)
            return
        if domain not in self._domain_set:
            self._add(remote, target)
            return
        self._expand_local(lookup_key(local), domain, users, remote, seen, depth + 1)

    def _expand_local(
        self,
        key: str,
        domain: str,
        users: list[str],
        remote: list[str],
        seen: set[str],
        depth: int,
    ) -> None:
        address = f"{key}@{domain}"
        if address in seen:
            return  # alias loop or repeated target
        if depth > MAX_DEPTH:
            log.warning("alias expansion deeper than %d at %s; stopped", MAX_DEPTH, address)
            return
        seen.add(address)
        targets = self._aliases.get(address)
        if targets is not None:
            for target in targets:
                self._expand_target(target, users, remote, seen, depth)
            return
        if self._userdb.exists(key):
            self._add(users, key)
            return
        catch_all = self._catch_all.get(domain)
        if catch_all is not None:
            before = len(users) + len(remote)
            self._expand_target(catch_all, users, remote, seen, depth)
            if len(users) + len(remote) > before:
                return
        if key == POSTMASTER and self.domains and domain != self.domains[0]:
            # Last resort: the primary domain's postmaster (its alias or user).
            self._expand_local(POSTMASTER, self.domains[0], users, remote, seen, depth + 1)
