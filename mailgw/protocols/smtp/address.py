"""Envelope addresses: split, normalise, compare.

Theory of operation
-------------------
aiosmtpd hands us the path of MAIL FROM / RCPT TO without its angle
brackets (``alice@Example.ORG``, ``"a b"@example.org``) or, for the null
reverse-path, ``<>``.  These helpers are pure string functions:

* ``split_address`` -> ``(local, domain)``.  The domain is case-insensitive
  (RFC 5321 section 2.4) and is returned lower-cased; an internationalised
  domain (RFC 6531, SMTPUTF8) is converted to its ASCII (A-label) form with
  IDNA so lookups against configured domains work for both spellings.  The
  local part is kept exactly as sent: only the receiving host may interpret
  it (RFC 5321 section 2.4); ``lookup_key`` is our interpretation (quotes
  removed, lower-cased) for user/alias lookups.
* The null reverse-path ``<>`` (RFC 5321 section 4.5.5, bounces) splits into
  ``("", "")``.
* ``Postmaster`` without a domain is legal in RCPT TO (RFC 5321 section
  4.5.1); it splits into ``("Postmaster", "")``.
* Address literals (``[192.0.2.1]``, ``[IPv6:...]``, RFC 5321 section 4.1.3)
  are kept as they are (lower-cased).
"""

from __future__ import annotations

NULL_SENDER = "<>"
MAX_LOCAL_PART = 64  # RFC 5321 section 4.5.3.1.1
MAX_DOMAIN = 255  # RFC 5321 section 4.5.3.1.2


class AddressError(ValueError):
    """The address cannot be interpreted (bad IDNA domain, empty parts...)."""


def is_null(addr: str) -> bool:
    """True for the null reverse-path (``<>`` or an empty string)."""
    return addr.strip() in ("", NULL_SENDER)


def _strip_brackets(addr: str) -> str:
    addr = addr.strip()
    if addr.startswith("<") and addr.endswith(">"):
        addr = addr[1:-1].strip()
    # A source route ("@a,@b:user@c", RFC 5321 section 4.1.2) must be
    # accepted and its route ignored (RFC 5321 appendix C).
    if addr.startswith("@") and ":" in addr:
        addr = addr.split(":", 1)[1]
    return addr


def normalize_domain(domain: str) -> str:
    """Lower-case; A-label (IDNA) form for non-ASCII names; no trailing dot."""
    domain = domain.strip().rstrip(".")
    if not domain:
        return ""
    if domain.startswith("["):  # address literal
        return domain.lower()
    if domain.isascii():
        return domain.lower()
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise AddressError(f"invalid internationalised domain {domain!r}") from exc


def split_address(addr: str) -> tuple[str, str]:
    """``"Alice@Example.ORG"`` -> ``("Alice", "example.org")``.

    ``"<>"`` -> ``("", "")``; ``"postmaster"`` -> ``("postmaster", "")``.
    Raises ``AddressError`` for an address with an empty local part or a
    domain that cannot be converted to ASCII.
    """
    if is_null(addr):
        return "", ""
    addr = _strip_brackets(addr)
    local, at, domain = addr.rpartition("@")
    if not at:
        return addr, ""
    if not local:
        raise AddressError(f"empty local part in {addr!r}")
    if not domain:
        raise AddressError(f"empty domain in {addr!r}")
    return local, normalize_domain(domain)


def unquote_local(local: str) -> str:
    """``"\\"a\\\\ b\\""`` -> ``a b``: a quoted-string local part means its content
    (RFC 5321 section 4.1.2: quoted and unquoted forms are the same mailbox)."""
    if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        out: list[str] = []
        escaped = False
        for ch in local[1:-1]:
            if escaped:
                out.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            else:
                out.append(ch)
        return "".join(out)
    return local


def lookup_key(local: str) -> str:
    """How mailgw compares local parts: unquoted, case-insensitive."""
    return unquote_local(local).lower()


def join_address(local: str, domain: str) -> str:
    """The inverse of ``split_address``; ``("", "")`` gives ``""``."""
    if not domain:
        return local
    return f"{local}@{domain}"


def canonical_address(addr: str) -> str:
    """``local@domain`` with the domain normalised; ``""`` for the null path."""
    local, domain = split_address(addr)
    return join_address(local, domain)


def check_lengths(local: str, domain: str) -> bool:
    """RFC 5321 section 4.5.3.1: local part <= 64 octets, domain <= 255."""
    return (
        len(local.encode("utf-8", "surrogateescape")) <= MAX_LOCAL_PART
        and len(domain) <= MAX_DOMAIN
    )
