"""The MailgwError tree.

Every error a user can cause or meet carries its exit code and a one-line
message.  The CLI maps them to exit codes in one place (``mailgw.cli.main``);
nothing else calls ``sys.exit``.

Exit codes (documented in ``mailgw --help`` and the man page):

    0  success
    1  the operation failed (store, user database, delivery, ...)
    2  usage or configuration error
    3  network error: cannot listen or connect
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NETWORK = 3


class MailgwError(Exception):
    """Base of every error shown to a user."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(MailgwError):
    exit_code = EXIT_USAGE


class ConfigError(MailgwError):
    """A configuration file is wrong.  Names the file, line and key."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        where = ""
        if file is not None:
            where = file
            if line is not None:
                where += f":{line}"
            where += ": "
        if key is not None:
            where += f"{key}: "
        super().__init__(where + message)
        self.file = file
        self.line = line
        self.key = key
        self.detail = message


class NetworkError(MailgwError):
    exit_code = EXIT_NETWORK


# --- store -----------------------------------------------------------------


class StoreError(MailgwError):
    pass


class InvalidFolderName(StoreError):
    pass


class FolderNotFound(StoreError):
    pass


class FolderExists(StoreError):
    pass


class MessageNotFound(StoreError):
    pass


# --- users and auth ----------------------------------------------------------


class AuthError(MailgwError):
    pass


class InvalidUserName(AuthError):
    exit_code = EXIT_USAGE


class UserExists(AuthError):
    pass


class UserNotFound(AuthError):
    pass


class PasswordError(AuthError):
    """No usable password was given (empty, mismatch, unreadable file)."""

    exit_code = EXIT_USAGE


# --- migrate -----------------------------------------------------------------


class ConnectFailed(NetworkError):
    """Cannot reach a server or complete TLS (exit 3)."""


class LoginFailed(NetworkError):
    """The server refused the login (exit 3)."""


class EndpointError(MailgwError):
    """A source or destination failed after connecting (lost connection, a folder
    that cannot be opened); the run records it and goes on where it can."""
