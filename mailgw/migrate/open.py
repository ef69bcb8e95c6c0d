"""Build the endpoint object an :class:`~mailgw.migrate.url.EndpointSpec` names.

Theory of operation: one function maps a parsed URL to the endpoint class of
its kind (constructors in docs/contracts.md, mailgw.migrate).  The classes are
imported only when needed, so ``mailgw migrate --help`` and a Maildir-only run
never import the IMAP or POP3 code.  ``imaps``/``pop3s`` are implicit TLS
(RFC 8314 3.3); ``imap``/``pop3`` let the endpoint use STARTTLS/STLS (RFC 3501
6.2.1, RFC 2595 4) as ``TlsOptions`` allows.  Nothing connects here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailgw.errors import UsageError
from mailgw.migrate.model import TlsOptions
from mailgw.migrate.url import EndpointSpec

if TYPE_CHECKING:
    from mailgw.migrate.endpoints.base import Endpoint


def make_endpoint(
    spec: EndpointSpec,
    password: str | None,
    tls: TlsOptions,
    *,
    batch_messages: int | None = None,
    batch_bytes: int | None = None,
    role: str = "destination",
) -> Endpoint:
    """A new, unconnected endpoint for ``spec``; ``password`` is for imap/pop3 only.

    ``batch_messages``/``batch_bytes`` (``--batch-size``): the most an IMAP
    endpoint puts in one UID FETCH or MULTIAPPEND (its defaults when None).
    ``role``: "source" makes a missing Maildir/mbox path an error at connect."""
    if spec.is_network:
        if password is None:
            raise UsageError(f"{spec.display}: a password is needed")
        assert spec.host is not None and spec.port is not None and spec.user is not None
        if spec.kind in ("imap", "imaps"):
            from mailgw.migrate.endpoints.imap import ImapEndpoint

            sizes: dict[str, int] = {}
            if batch_messages is not None:
                sizes["batch_messages"] = batch_messages
            if batch_bytes is not None:
                sizes["batch_bytes"] = batch_bytes
            return ImapEndpoint(
                spec.host,
                spec.port,
                spec.user,
                password,
                implicit_tls=spec.implicit_tls,
                tls=tls,
                **sizes,
            )
        from mailgw.migrate.endpoints.pop3 import Pop3Source

        return Pop3Source(
            spec.host, spec.port, spec.user, password, implicit_tls=spec.implicit_tls, tls=tls
        )
    assert spec.path is not None
    if spec.kind == "maildir":
        from mailgw.migrate.endpoints.maildir import MaildirEndpoint

        return MaildirEndpoint(spec.path, must_exist=role == "source")
    if spec.kind == "mbox":
        from mailgw.migrate.endpoints.mbox import MboxEndpoint

        return MboxEndpoint(spec.path, must_exist=role == "source")
    raise UsageError(f"unknown endpoint kind {spec.kind!r}")


__all__ = ["make_endpoint"]
