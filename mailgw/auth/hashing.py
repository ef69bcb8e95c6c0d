"""Password hashes in Dovecot's ``{SCHEME}hash`` notation.

Theory of operation
-------------------
A stored password is ``{SCHEME}`` followed by the scheme's own encoding, as
Dovecot writes it (doveadm-pw(1), "Password schemes" in the Dovecot docs), so
a mailgw ``users.passwd`` can be served by Dovecot and the other way round.

* New hashes are ``{ARGON2ID}`` + the argon2-cffi PHC string
  (``$argon2id$v=19$m=65536,t=3,p=1$salt$hash``), which Dovecot 2.3 verifies
  with libsodium.  Parameters: time_cost 3, memory 64 MiB, parallelism 1.
* Read: ``{ARGON2ID}``, ``{ARGON2I}``, ``{BLF-CRYPT}`` (bcrypt ``$2y$``/``$2b$``/
  ``$2a$``; like crypt_blowfish only the first 72 bytes of the password count),
  ``{PLAIN}`` and its aliases ``{CLEAR}``/``{CLEARTEXT}`` (compared in constant
  time), and ``{CRYPT}``/``{SHA512-CRYPT}``/``{SHA256-CRYPT}``/``{MD5-CRYPT}``
  through bcrypt (``$2?$`` hashes) or the C library's crypt(3) where Python
  still has the ``crypt`` module.  A hash without ``{SCHEME}`` is ``CRYPT``,
  Dovecot's default for passwd-files.
* Anything else verifies as False and logs a warning naming the scheme (never
  the hash).

``MAILGW_ARGON2_FAST=1`` (TEST ONLY) lowers the argon2 cost to the minimum so
test suites stay fast.  Never set it on a real server: hashes written with it
are cheap to brute-force.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import warnings
from functools import lru_cache

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

log = logging.getLogger("mailgw.auth")

FAST_ENV = "MAILGW_ARGON2_FAST"

# Production parameters (argon2-cffi's RFC 9106 "low memory" profile, p=1).
TIME_COST = 3
MEMORY_COST = 65536  # KiB
PARALLELISM = 1

_SCHEME_RE = re.compile(r"^\{([A-Za-z0-9._-]+)\}(.*)$", re.DOTALL)
_BCRYPT_PREFIXES = ("$2y$", "$2b$", "$2a$")
_PLAIN_SCHEMES = frozenset({"PLAIN", "CLEAR", "CLEARTEXT"})
_CRYPT_SCHEMES = frozenset({"CRYPT", "SHA512-CRYPT", "SHA256-CRYPT", "MD5-CRYPT"})


def _fast() -> bool:
    return os.environ.get(FAST_ENV, "") == "1"


def _hasher() -> argon2.PasswordHasher:
    if _fast():
        return argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return argon2.PasswordHasher(
        time_cost=TIME_COST, memory_cost=MEMORY_COST, parallelism=PARALLELISM
    )


def hash_password(password: str) -> str:
    """Return ``{ARGON2ID}$argon2id$...`` for ``password``."""
    if not password:
        raise ValueError("empty password")
    return "{ARGON2ID}" + _hasher().hash(password)


def split_scheme(stored: str) -> tuple[str, str]:
    """``"{PLAIN}x"`` -> ``("PLAIN", "x")``; no prefix means ``CRYPT``."""
    m = _SCHEME_RE.match(stored)
    if m is None:
        return "CRYPT", stored
    return m.group(1).upper(), m.group(2)


def verify_password(stored: str, password: str) -> bool:
    """True if ``password`` matches the ``{SCHEME}hash`` in ``stored``."""
    if not stored or not password:
        return False
    scheme, encoded = split_scheme(stored)
    try:
        return _verify(scheme, encoded, password.encode("utf-8"))
    except ValueError:  # includes UnicodeEncodeError; never echo the hash
        return False


def _verify(scheme: str, encoded: str, pw: bytes) -> bool:
    if scheme == "ARGON2ID":
        return encoded.startswith("$argon2id$") and _argon2(encoded, pw)
    if scheme == "ARGON2I":
        return encoded.startswith("$argon2i$") and _argon2(encoded, pw)
    if scheme == "BLF-CRYPT":
        return _bcrypt(encoded, pw)
    if scheme in _PLAIN_SCHEMES:
        return hmac.compare_digest(encoded.encode("utf-8"), pw)
    if scheme in _CRYPT_SCHEMES:
        if encoded.startswith(_BCRYPT_PREFIXES):
            return _bcrypt(encoded, pw)
        return _libc_crypt(scheme, encoded, pw)
    log.warning("unsupported password scheme {%s}: login refused", scheme)
    return False


def _argon2(encoded: str, pw: bytes) -> bool:
    try:
        return argon2.PasswordHasher().verify(encoded, pw)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _bcrypt(encoded: str, pw: bytes) -> bool:
    if not encoded.startswith(_BCRYPT_PREFIXES):
        return False
    # crypt_blowfish (Dovecot) uses the first 72 bytes; bcrypt>=5 refuses more.
    return bcrypt.checkpw(pw[:72], encoded.encode("ascii"))


def _libc_crypt(scheme: str, encoded: str, pw: bytes) -> bool:
    crypt_fn = _crypt_function()
    if crypt_fn is None:
        log.warning("password scheme {%s} needs crypt(3), not available: login refused", scheme)
        return False
    try:
        result = crypt_fn(pw.decode("utf-8"), encoded)
    except (OSError, ValueError):
        return False
    if not result or len(result) < 13:  # "*0"/"*1" or None on error
        return False
    return hmac.compare_digest(result.encode("utf-8"), encoded.encode("utf-8"))


@lru_cache(maxsize=1)
def _crypt_function():  # type: ignore[no-untyped-def]
    """The stdlib ``crypt.crypt`` (deprecated in 3.11, gone in 3.13) or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return crypt.crypt


@lru_cache(maxsize=2)
def _dummy_hash(fast: bool) -> str:
    return hash_password("mailgw-dummy-password-for-unknown-users")


def dummy_verify(password: str) -> bool:
    """Spend the time of one real verification; always False.

    Used for unknown users so that timing does not tell which names exist.
    """
    verify_password(_dummy_hash(_fast()), password or "x")
    return False


__all__ = ["FAST_ENV", "dummy_verify", "hash_password", "split_scheme", "verify_password"]
