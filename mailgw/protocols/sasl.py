"""SASL message decoding for AUTH PLAIN and AUTH LOGIN (SMTP, POP3, IMAP).

Theory of operation
-------------------
The protocol cores hand us the client's base64 response token (without CRLF,
and with ``*``/``=`` already handled: RFC 4954 section 4 cancel / empty
initial response).  We decode it strictly and never put the decoded bytes in
an exception message, since they hold a password.

* Base64 (RFC 4648 section 4): only the alphabet and ``=`` padding; characters
  outside it are rejected (section 3.3), no whitespace, correct padding, and
  the encoding must be canonical (section 3.5: pad bits zero), checked by
  re-encoding.
* PLAIN (RFC 4616 section 2): ``[authzid] NUL authcid NUL passwd``; exactly two
  NULs; authcid and passwd non-empty (``1*SAFE``); each part UTF-8 (RFC 3629).
* LOGIN (draft-murchison-sasl-login): the username and the password each come
  as one base64 token; UTF-8, no NUL.
"""

from __future__ import annotations

import base64
import binascii

# Server challenges for AUTH LOGIN, already base64 ("Username:", "Password:").
LOGIN_USERNAME_CHALLENGE = base64.b64encode(b"Username:")
LOGIN_PASSWORD_CHALLENGE = base64.b64encode(b"Password:")


def decode_base64(data: bytes) -> bytes:
    """Strict, canonical base64 (RFC 4648 sections 3.3, 3.5, 4); ValueError otherwise."""
    if isinstance(data, str):
        try:
            data = data.encode("ascii")
        except UnicodeEncodeError:
            raise ValueError("SASL response is not base64") from None
    try:
        decoded = binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ValueError("SASL response is not valid base64") from None
    if base64.b64encode(decoded) != data:
        raise ValueError("SASL response is not canonical base64")
    return decoded


def _utf8(part: bytes, what: str) -> str:
    try:
        return part.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"SASL {what} is not UTF-8") from None


def decode_plain(data: bytes) -> tuple[str, str, str]:
    """Decode an AUTH PLAIN response: ``(authzid, authcid, password)``.

    ``authzid`` is ``""`` when the client sent none.  Raises ValueError.
    """
    message = decode_base64(data)
    parts = message.split(b"\0")
    if len(parts) != 3:
        raise ValueError("SASL PLAIN message needs exactly two NUL separators")
    authzid, authcid, passwd = parts
    if not authcid:
        raise ValueError("SASL PLAIN authentication identity is empty")
    if not passwd:
        raise ValueError("SASL PLAIN password is empty")
    return (
        _utf8(authzid, "authorization identity"),
        _utf8(authcid, "identity"),
        _utf8(passwd, "password"),
    )


def decode_login_step(data: bytes) -> str:
    """Decode one AUTH LOGIN response (user name or password).  Raises ValueError."""
    text = _utf8(decode_base64(data), "LOGIN response")
    if "\0" in text:
        raise ValueError("SASL LOGIN response contains NUL")
    return text


def encode_plain(authcid: str, password: str, authzid: str = "") -> bytes:
    """The client side of PLAIN (for tests, probe and the relay client)."""
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode())


__all__ = [
    "LOGIN_PASSWORD_CHALLENGE",
    "LOGIN_USERNAME_CHALLENGE",
    "decode_base64",
    "decode_login_step",
    "decode_plain",
    "encode_plain",
]
