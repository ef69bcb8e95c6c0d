"""Sans-IO SMTP helpers shared by the server and the relay.

``replies`` (reply texts named by code), ``address`` (envelope address
parsing), ``data`` (bare CR/LF checks, dot-stuffing) and ``trace``
(Received/Return-Path/Delivered-To).  Nothing here does I/O.
"""

from __future__ import annotations

from mailgw.protocols.smtp.address import (
    NULL_SENDER,
    AddressError,
    canonical_address,
    is_null,
    join_address,
    lookup_key,
    normalize_domain,
    split_address,
)
from mailgw.protocols.smtp.data import dot_stuff, dot_unstuff, find_bare_cr_lf, to_crlf
from mailgw.protocols.smtp.trace import (
    address_literal,
    received_header,
    trace_headers,
    with_protocol,
)

__all__ = [
    "NULL_SENDER",
    "AddressError",
    "address_literal",
    "canonical_address",
    "dot_stuff",
    "dot_unstuff",
    "find_bare_cr_lf",
    "is_null",
    "join_address",
    "lookup_key",
    "normalize_domain",
    "received_header",
    "split_address",
    "to_crlf",
    "trace_headers",
    "with_protocol",
]
