"""Errors shared by every sans-IO protocol core (SMTP, POP3, IMAP).

- ``RemoteProtocolError``: the peer broke the protocol.  ``reply`` holds the
  bytes to send back (``-ERR ...``, ``BAD ...``, ``500 ...``).
- ``LocalProtocolError``: our own code misused a core (answered an event that
  is not pending, passed an invalid maildrop, ...).  Always a bug.

Any other exception escaping a core is a bug in the core.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of both protocol error kinds."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol; ``reply`` is what to send it."""

    def __init__(self, reply: bytes) -> None:
        super().__init__(reply.decode("ascii", "replace").rstrip("\r\n"))
        self.reply = reply


class LocalProtocolError(ProtocolError):
    """The application misused a protocol core: a bug on our side."""
