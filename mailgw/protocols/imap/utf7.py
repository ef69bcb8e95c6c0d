"""IMAP modified UTF-7 mailbox names (RFC 3501 section 5.1.3).

Theory of operation:

* Printable US-ASCII (0x20-0x7e) except ``&`` stands for itself; ``&`` is
  written ``&-`` (RFC 3501 5.1.3).
* Every other run of characters is encoded as UTF-16BE, then as modified
  BASE64 (RFC 2045 alphabet with ``,`` instead of ``/``, no ``=`` padding),
  between ``&`` and ``-`` (RFC 3501 5.1.3).
* Decoding is strict, as RFC 3501 requires of well-formed names: printable
  ASCII must not be base64-encoded, encoded runs must not be adjacent
  (``&AAA-&BBB-``), leftover padding bits must be zero, and no byte outside
  0x20-0x7e may appear.  A malformed name raises :class:`ValueError`.

The store uses this codec for Maildir++ folder directory names, as Dovecot
does by default.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["decode_mutf7", "encode_mutf7"]


def _is_direct(ch: str) -> bool:
    return "\x20" <= ch <= "\x7e"


def _b64_encode(run: str) -> str:
    try:
        raw = run.encode("utf-16-be")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise ValueError(f"cannot encode {run!r}: {exc.reason}") from None
    return base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")


def encode_mutf7(name: str) -> str:
    """Encode a Unicode mailbox name to IMAP modified UTF-7."""
    out: list[str] = []
    run: list[str] = []
    for ch in name:
        if _is_direct(ch):
            if run:
                out.append("&" + _b64_encode("".join(run)) + "-")
                run = []
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    if run:
        out.append("&" + _b64_encode("".join(run)) + "-")
    return "".join(out)


def _b64_decode(chunk: str, whole: str) -> str:
    if not chunk:
        raise ValueError(f"empty encoded run in {whole!r}")
    std = chunk.replace(",", "/")
    if "=" in std or len(std) % 4 == 1:
        raise ValueError(f"bad modified base64 {chunk!r} in {whole!r}")
    padded = std + "=" * (-len(std) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except binascii.Error:
        raise ValueError(f"bad modified base64 {chunk!r} in {whole!r}") from None
    if base64.b64encode(raw).decode("ascii") != padded:
        raise ValueError(f"non-zero padding bits in {chunk!r} of {whole!r}")
    if len(raw) % 2:
        raise ValueError(f"odd UTF-16 length in {chunk!r} of {whole!r}")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ValueError(f"bad UTF-16 in {chunk!r} of {whole!r}") from None
    if any(_is_direct(ch) for ch in text):
        raise ValueError(f"printable ASCII must not be encoded: {whole!r}")
    return text


def decode_mutf7(name: str) -> str:
    """Decode IMAP modified UTF-7 to Unicode; ValueError when malformed."""
    out: list[str] = []
    i = 0
    n = len(name)
    prev_encoded = False
    while i < n:
        ch = name[i]
        if not _is_direct(ch):
            raise ValueError(f"character {ch!r} not allowed in modified UTF-7: {name!r}")
        if ch != "&":
            out.append(ch)
            i += 1
            prev_encoded = False
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise ValueError(f"unterminated '&' in {name!r}")
        if end == i + 1:
            out.append("&")
            prev_encoded = False
        else:
            if prev_encoded:
                raise ValueError(f"adjacent encoded runs in {name!r}")
            out.append(_b64_decode(name[i + 1 : end], name))
            prev_encoded = True
        i = end + 1
    return "".join(out)
