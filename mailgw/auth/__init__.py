"""Users and authentication: Dovecot passwd-file, password hashes, failure limiter, SASL."""

from mailgw.auth.hashing import hash_password, verify_password
from mailgw.auth.limiter import AuthLimiter
from mailgw.auth.passwd import USERNAME_RE, UserDB, validate_username
from mailgw.auth.service import Authenticator, normalize_login

__all__ = [
    "USERNAME_RE",
    "AuthLimiter",
    "Authenticator",
    "UserDB",
    "hash_password",
    "normalize_login",
    "validate_username",
    "verify_password",
]
