"""Outbound routes: which way mail for a recipient domain leaves, and to which hosts.

Theory of operation
-------------------
A :class:`Route` is either a *smarthost* route (a list of relay hosts, the
first one primary, the others tried in order when it cannot be reached) or an
*mx* route (direct delivery to the recipient domain's mail exchangers).  Each
route lists the recipient ``domains`` it serves; ``"*"`` makes it the default.
:class:`Router` picks the route for a domain: an exact (case-insensitive,
IDNA A-label) match first, then the default route.  Parent domains do not
match: ``example.com`` does not route ``sub.example.com``.

:func:`resolve_targets` turns a route and a recipient domain into the
ordered list of :class:`Target` (address, port) to try:

* smarthost: its hosts in configured order (host names are resolved by the
  operating system when connecting; a ``host:port`` entry overrides the
  route's port).
* mx (RFC 5321 section 5.1): MX records sorted by preference, lowest first;
  hosts of equal preference in random order (section 5.1: "randomize ... to
  spread the load"); each exchange resolved to its IPv4 then IPv6 addresses
  with the route's resolver, so the tests' private DNS server is used for
  everything.  No MX records: the domain itself is the implicit MX (its
  A/AAAA records).  A null MX (RFC 7505) and NXDOMAIN are permanent failures;
  timeouts and SERVFAIL are temporary (see ``mailgw.relay.dns``).  An address
  literal domain (``[192.0.2.1]``, RFC 5321 section 4.1.3) is its own target.

Failures are raised as :class:`RoutingError` with ``permanent`` and an
SMTP-style ``reply`` for the queue's last reply and the DSN.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import dns.asyncresolver

from mailgw.errors import ConfigError, MailgwError
from mailgw.protocols.smtp.address import AddressError, normalize_domain
from mailgw.relay.dns import DnsError, lookup_addresses, lookup_mx, make_resolver

RouteKind = Literal["smarthost", "mx"]
RouteTls = Literal["starttls", "implicit", "none"]

DEFAULT_ROUTE = "*"
MX_PORT = 25  # RFC 5321 section 4.5.4.2 ... the SMTP port
SUBMISSION_PORT = 587  # RFC 6409 section 3.1
SUBMISSIONS_PORT = 465  # RFC 8314 section 7.3: submission over implicit TLS
MAX_TARGETS = 20  # addresses tried per delivery attempt, at most


class RoutingError(MailgwError):
    """No target for a domain: ``permanent`` (bounce) or temporary (retry)."""

    def __init__(self, reply: str, *, permanent: bool) -> None:
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent


class NoRoute(RoutingError):
    """No route serves the domain and there is no default (``*``) route."""

    def __init__(self, domain: str) -> None:
        super().__init__(
            f"550 5.4.4 {domain}: no relay route for this domain (and no default route)",
            permanent=True,
        )
        self.domain = domain


@dataclass(frozen=True)
class Route:
    """One outbound route; see the module docstring.  ``port`` None means the
    default (25 for mx; for a smarthost 465 with implicit TLS, else 587); it is
    always set after construction.  Empty ``domains`` means ``("*",)``."""

    name: str
    kind: RouteKind = "smarthost"
    hosts: tuple[str, ...] = ()
    port: int | None = None
    tls: RouteTls = "starttls"
    tls_required: bool = True
    tls_verify: bool = True
    ca_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    domains: tuple[str, ...] = (DEFAULT_ROUTE,)
    max_per_connection: int = 50
    concurrency: int = 4

    def __post_init__(self) -> None:
        where = f"route {self.name!r}"
        if self.kind not in get_args(RouteKind):
            raise ConfigError(f"{where}: kind must be smarthost or mx", key="kind")
        if self.tls not in get_args(RouteTls):
            raise ConfigError(f"{where}: tls must be starttls, implicit or none", key="tls")
        if self.kind == "smarthost" and not self.hosts:
            raise ConfigError(f"{where}: a smarthost route needs hosts", key="hosts")
        if self.password_file is not None and self.password_env is not None:
            raise ConfigError(
                f"{where}: give password_file or password_env, not both", key="password_file"
            )
        if self.max_per_connection < 1 or self.concurrency < 1:
            raise ConfigError(
                f"{where}: max_per_connection and concurrency must be at least 1",
                key="concurrency",
            )
        if self.port is None:
            port = (
                MX_PORT
                if self.kind == "mx"
                else SUBMISSIONS_PORT
                if self.tls == "implicit"
                else SUBMISSION_PORT
            )
            object.__setattr__(self, "port", port)
        if not self.domains:  # as in the config schema: no domains = the default route
            object.__setattr__(self, "domains", (DEFAULT_ROUTE,))
        for host in self.hosts:
            split_host_port(host, 1)  # raises ConfigError on a bad entry
        try:
            domains = tuple(d if d == DEFAULT_ROUTE else normalize_domain(d) for d in self.domains)
        except AddressError as exc:
            raise ConfigError(f"{where}: {exc}", key="domains") from exc
        object.__setattr__(self, "domains", domains)

    @property
    def effective_port(self) -> int:
        assert self.port is not None  # set in __post_init__
        return self.port

    @classmethod
    def from_config(cls, obj: Any) -> Route:
        """A Route from any object with attributes of the same names (the
        ``relay:`` config section's route objects); missing ones get defaults."""
        if isinstance(obj, Route):
            return obj

        def get(name: str, default: Any = None) -> Any:
            return getattr(obj, name, default)

        def opt_path(value: Any) -> Path | None:
            return None if value in (None, "") else Path(value)

        kwargs: dict[str, Any] = {
            "name": str(get("name", "default")),
            "kind": get("kind", "smarthost"),
            "hosts": tuple(str(h) for h in (get("hosts") or ())),
            "port": get("port"),
            "tls": get("tls", "starttls"),
            "tls_required": bool(get("tls_required", True)),
            "tls_verify": bool(get("tls_verify", True)),
            "ca_file": opt_path(get("ca_file")),
            "username": get("username") or None,
            "password_file": opt_path(get("password_file")),
            "password_env": get("password_env") or None,
            "domains": tuple(str(d) for d in (get("domains") or (DEFAULT_ROUTE,))),
            "max_per_connection": int(get("max_per_connection", 50)),
            "concurrency": int(get("concurrency", 4)),
        }
        return cls(**kwargs)


@dataclass(frozen=True)
class Target:
    """One place to connect to: ``host`` (IP address or host name) and ``port``.

    ``name`` is the host name the address belongs to (the MX exchange or the
    smarthost name): the name TLS certificates are checked against and the
    one shown in replies.  None means ``host``.
    """

    host: str
    port: int
    name: str | None = field(default=None, compare=False)

    @property
    def server_name(self) -> str:
        return self.name or self.host

    def __str__(self) -> str:
        addr = f"[{self.host}]" if ":" in self.host else self.host
        if self.name and self.name != self.host:
            return f"{self.name}[{self.host}]:{self.port}"
        return f"{addr}:{self.port}"


def split_host_port(entry: str, default_port: int) -> tuple[str, int]:
    """``"host"``, ``"host:port"``, ``"[v6]:port"`` or a bare IPv6 address -> (host, port)."""
    entry = entry.strip()
    host, port = entry, default_port
    if entry.startswith("["):
        end = entry.find("]")
        if end < 0:
            raise ConfigError(f"bad host entry {entry!r}", key="hosts")
        host, rest = entry[1:end], entry[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"bad host entry {entry!r}", key="hosts")
            port = _port(rest[1:], entry)
    elif entry.count(":") == 1:
        host, _, p = entry.partition(":")
        port = _port(p, entry)
    if not host:
        raise ConfigError(f"bad host entry {entry!r}", key="hosts")
    return host, port


def _port(text: str, entry: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ConfigError(f"bad port in host entry {entry!r}", key="hosts")
    return port


class Router:
    """Route lookup by recipient domain (exact match, then ``*``).

    ``routes``: Route objects, config objects with the same attribute names,
    or a relay config object with a ``routes`` attribute.
    """

    def __init__(self, routes: Iterable[Any] | Any) -> None:
        if not isinstance(routes, Iterable) and hasattr(routes, "routes"):
            routes = routes.routes
        self.routes: tuple[Route, ...] = tuple(Route.from_config(r) for r in routes)
        self._by_domain: dict[str, Route] = {}
        self.default: Route | None = None
        for route in self.routes:
            for domain in route.domains:
                if domain == DEFAULT_ROUTE:
                    if self.default is not None:
                        raise ConfigError(
                            f"routes {self.default.name!r} and {route.name!r} are both "
                            "the default ('*') route",
                            key="domains",
                        )
                    self.default = route
                elif domain in self._by_domain:
                    raise ConfigError(
                        f"domain {domain} is in routes {self._by_domain[domain].name!r} "
                        f"and {route.name!r}",
                        key="domains",
                    )
                else:
                    self._by_domain[domain] = route

    def route_for(self, domain: str) -> Route:
        """The route for recipient ``domain``; raises :class:`NoRoute`."""
        try:
            key = normalize_domain(domain)
        except AddressError:
            key = domain.lower()
        route = self._by_domain.get(key, self.default)
        if route is None:
            raise NoRoute(domain)
        return route


async def resolve_targets(
    route: Route, domain: str, resolver: dns.asyncresolver.Resolver | None = None
) -> list[Target]:
    """Ordered targets for mail to ``domain`` over ``route``; see the module docstring.

    ``resolver``: a dnspython async resolver (``mailgw.relay.dns.make_resolver``);
    None uses the system configuration.  Raises :class:`RoutingError`.
    """
    port = route.effective_port
    if route.kind == "smarthost":
        targets = []
        for entry in route.hosts:
            host, p = split_host_port(entry, port)
            targets.append(Target(host, p, host))
        return targets
    try:
        return await _mx_targets(domain, port, resolver or make_resolver())
    except DnsError as exc:
        raise RoutingError(exc.reply, permanent=exc.permanent) from exc


def _literal(domain: str) -> str | None:
    """The address of an address-literal domain, or None."""
    if not (domain.startswith("[") and domain.endswith("]")):
        return None
    text = domain[1:-1]
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _by_preference(records: list[tuple[int, str]]) -> list[str]:
    """Exchanges by ascending preference, shuffled within equal preference."""
    shuffled = list(records)
    random.shuffle(shuffled)
    shuffled.sort(key=lambda r: r[0])  # stable: keeps the random order among equals
    return list(dict.fromkeys(h for _, h in shuffled))


async def _mx_targets(domain: str, port: int, resolver: dns.asyncresolver.Resolver) -> list[Target]:
    literal = _literal(domain)
    if literal is not None:
        return [Target(literal, port, None)]
    try:
        domain = normalize_domain(domain)
    except AddressError as exc:
        raise DnsError(f"550 5.1.2 {domain}: {exc}", permanent=True) from exc
    records = await lookup_mx(resolver, domain)
    implicit = records is None
    hosts = [domain] if records is None else _by_preference(records)
    targets: list[Target] = []
    temp_error: DnsError | None = None
    for host in hosts:
        try:
            addresses = await lookup_addresses(resolver, host)
        except DnsError as exc:
            temp_error = temp_error or exc
            continue
        targets.extend(Target(a, port, host) for a in addresses)
        if len(targets) >= MAX_TARGETS:
            break
    if targets:
        return targets[:MAX_TARGETS]
    if temp_error is not None:
        raise temp_error
    if implicit:
        reason = "no MX and no address records"
    else:
        reason = "no address records for its mail exchangers (" + ", ".join(hosts) + ")"
    raise DnsError(f"550 5.4.4 {domain}: unable to route: {reason}", permanent=True)
