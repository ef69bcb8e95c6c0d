"""``mailgw probe --mx DOMAIN``: the hosts that receive a domain's mail.

Theory of operation
-------------------
The MX records of the domain (dnspython asynchronous resolver, through
:mod:`mailgw.relay.dns`, which classifies failures) are sorted by preference,
lowest first (RFC 5321 5.1); records of equal preference keep DNS order;
duplicates are dropped.

* No MX records (the name exists): the domain itself is the one mail host,
  the implicit MX (RFC 5321 5.1).
* A null MX (RFC 7505 3: one MX, preference 0, exchange ".") says the domain
  takes no mail: no hosts, and :func:`resolve_mx` says why.
* NXDOMAIN, timeouts, server failures: :class:`MxError` from :func:`mx_hosts`,
  the text in ``MxAnswer.error`` from :func:`resolve_mx`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailgw.errors import NetworkError
from mailgw.relay.dns import DnsError, lookup_mx, make_resolver


class MxError(NetworkError):
    """The MX lookup failed (exit 3)."""


@dataclass
class MxAnswer:
    domain: str
    hosts: list[str] = field(default_factory=list)  # in preference order
    implicit: bool = False  # no MX records: the domain itself (RFC 5321 5.1)
    null_mx: bool = False  # RFC 7505: the domain accepts no mail
    error: str | None = None  # why there are no hosts


async def resolve_mx(domain: str, *, resolver: Any = None) -> MxAnswer:
    """The mail hosts of ``domain``; never raises (failures in ``error``)."""
    domain = domain.strip().rstrip(".").lower()
    answer = MxAnswer(domain)
    try:
        resolver = resolver if resolver is not None else make_resolver()
        records = await lookup_mx(resolver, domain)
    except DnsError as exc:
        answer.error = exc.reply
        answer.null_mx = "RFC 7505" in exc.reply
        return answer
    if records is None:
        answer.hosts, answer.implicit = [domain], True
        return answer
    for _, host in sorted(records, key=lambda r: r[0]):
        if host not in answer.hosts:
            answer.hosts.append(host)
    return answer


async def mx_hosts(domain: str, *, resolver: Any = None) -> list[str]:
    """MX hosts of ``domain`` in preference order; ``[]`` for a null MX (RFC 7505).

    Raises :class:`MxError` when the lookup fails (NXDOMAIN, timeout, SERVFAIL).
    """
    answer = await resolve_mx(domain, resolver=resolver)
    if answer.error is not None and not answer.null_mx:
        raise MxError(f"MX lookup for {answer.domain} failed: {answer.error}")
    return answer.hosts


__all__ = ["MxAnswer", "MxError", "mx_hosts", "resolve_mx"]
