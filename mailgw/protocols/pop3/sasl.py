"""SASL PLAIN response decoding (RFC 4616, carried by RFC 5034 AUTH).

The response is strict base64 (RFC 4648 section 4: alphabet, padding, no
trailing data, no whitespace) of ``[authzid] NUL authcid NUL passwd``, UTF-8.
authcid and passwd must not be empty (RFC 4616 section 2).
"""

from __future__ import annotations

import binascii


def decode_base64(data: bytes) -> bytes:
    """Strict base64; ValueError if ``data`` is not canonical base64."""
    if not data:
        return b""
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64: {exc}") from None


def decode_plain(response: bytes) -> tuple[str, str, str]:
    """``(authzid, authcid, password)`` from a base64 PLAIN response; ValueError."""
    message = decode_base64(response)
    parts = message.split(b"\0")
    if len(parts) != 3:
        raise ValueError("PLAIN message must have exactly three fields")
    try:
        authzid, authcid, password = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        raise ValueError("PLAIN message is not UTF-8") from None
    if not authcid or not password:
        raise ValueError("PLAIN authcid and password must not be empty")
    return authzid, authcid, password
