"""DNS lookups for direct (MX) delivery, with failures classified.

Theory of operation
-------------------
The relay asks DNS two things: the MX records of a recipient domain and the
addresses (A, AAAA) of a host.  Both go through a dnspython asynchronous
resolver that :func:`make_resolver` builds either from the system
configuration (``/etc/resolv.conf``) or from an explicit list of name servers
and a port -- the tests point it at a private DNS server on a loopback high
port.  Names are always queried as absolute names (no search list).

Every failure becomes a :class:`DnsError` that says whether it is permanent
(the message will never be deliverable that way: bounce) or temporary (try
again later):

* NXDOMAIN (RFC 1035 section 4.1.1 RCODE 3; RFC 8020: nothing exists below
  it either) is permanent.
* A null MX, a single MX record with preference 0 and the root as exchange
  (RFC 7505 section 3), says the domain accepts no mail: permanent, with the
  enhanced status 5.1.10 (RFC 7505 section 4.2).
* No answer (the name exists, no record of that type) is not an error for MX:
  :func:`lookup_mx` returns ``None`` and the caller falls back to the domain's
  own addresses, the implicit MX of RFC 5321 section 5.1.
* Timeouts, SERVFAIL from every server, no usable name server: temporary
  (RFC 5321 section 5.1 treats a failed lookup as a temporary condition).

Replies are written like SMTP replies (``550 5.1.2 ...``, ``451 4.4.3 ...``)
because they end up as a recipient's "last reply" in the queue and in DSNs
(RFC 3463: X.1.2 bad destination system address, X.4.3 directory server
failure, X.4.4 unable to route).
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

DEFAULT_TIMEOUT = 5.0  # seconds per server try
DEFAULT_LIFETIME = 15.0  # seconds for a whole lookup


class DnsError(Exception):
    """A lookup failed.  ``permanent`` decides bounce vs retry; ``reply`` is
    the SMTP-style text kept as the recipient's last reply."""

    def __init__(self, reply: str, *, permanent: bool) -> None:
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent


def make_resolver(
    nameservers: Sequence[str] = (),
    port: int = 53,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    lifetime: float = DEFAULT_LIFETIME,
) -> dns.asyncresolver.Resolver:
    """An asynchronous resolver: the system's when ``nameservers`` is empty,
    else exactly those servers (IP addresses) on ``port``.

    Raises :class:`DnsError` (temporary) when there is no system configuration.
    """
    if nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = list(nameservers)
        resolver.port = port
    else:
        try:
            resolver = dns.asyncresolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration as exc:
            raise DnsError(f"451 4.4.3 no DNS resolver configured: {exc}", permanent=False) from exc
    resolver.timeout = timeout
    resolver.lifetime = lifetime
    resolver.cache = None
    return resolver


def _temporary(kind: str, name: str, exc: BaseException) -> DnsError:
    reason = "timeout" if isinstance(exc, dns.exception.Timeout) else type(exc).__name__
    return DnsError(
        f"451 4.4.3 DNS lookup of {kind} records for {name} failed temporarily ({reason})",
        permanent=False,
    )


async def _query(
    resolver: dns.asyncresolver.Resolver, name: str, rdtype: str
) -> dns.resolver.Answer | None:
    """The answer, or None for "no record of this type" (NOERROR/NODATA).

    NXDOMAIN propagates as :class:`dns.resolver.NXDOMAIN`; anything else that
    goes wrong becomes a temporary :class:`DnsError`.
    """
    try:
        qname = dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise DnsError(f"550 5.1.2 {name}: invalid domain name ({exc})", permanent=True) from exc
    try:
        return await resolver.resolve(qname, rdtype, search=False)
    except dns.resolver.NXDOMAIN:
        raise
    except dns.resolver.NoAnswer:
        return None
    except (dns.exception.DNSException, OSError) as exc:
        # Timeout / LifetimeTimeout, NoNameservers (SERVFAIL, REFUSED), socket errors
        raise _temporary(rdtype, name, exc) from exc


async def lookup_mx(
    resolver: dns.asyncresolver.Resolver, domain: str
) -> list[tuple[int, str]] | None:
    """MX records of ``domain`` as ``(preference, exchange)``, exchange without
    the trailing dot, in DNS order; None when the domain has no MX records.

    Raises :class:`DnsError`: permanent for NXDOMAIN and a null MX (RFC 7505),
    temporary for timeouts and server failures.
    """
    try:
        answer = await _query(resolver, domain, "MX")
    except dns.resolver.NXDOMAIN as exc:
        raise DnsError(
            f"550 5.1.2 {domain}: Host or domain name not found (NXDOMAIN)", permanent=True
        ) from exc
    if answer is None:
        return None
    records: list[tuple[int, str]] = []
    for rr in answer:
        exchange = rr.exchange.to_text(omit_final_dot=True)
        if rr.exchange == dns.name.root or exchange in ("", "."):
            # RFC 7505 section 3: a null MX is the only MX; treat it as null even if
            # mixed with others (section 3 says such a domain SHOULD NOT get mail).
            raise DnsError(
                f"556 5.1.10 {domain}: Domain does not accept mail (null MX, RFC 7505)",
                permanent=True,
            )
        records.append((int(rr.preference), exchange.lower()))
    return records


async def lookup_addresses(resolver: dns.asyncresolver.Resolver, host: str) -> list[str]:
    """IPv4 then IPv6 addresses of ``host``; empty when it has none or does not exist.

    Raises a temporary :class:`DnsError` only when both lookups failed
    temporarily and neither found an address.
    """
    found: list[str] = []
    errors: list[DnsError] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = await _query(resolver, host, rdtype)
        except dns.resolver.NXDOMAIN:
            return found  # RFC 8020: no other type exists either
        except DnsError as exc:
            if exc.permanent:
                raise
            errors.append(exc)
            continue
        if answer is not None:
            found.extend(rr.address for rr in answer)
    if not found and errors:
        raise errors[0]
    return found
