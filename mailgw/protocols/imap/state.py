"""IMAP connection states and the command table (RFC 3501 section 3).

Theory of operation
-------------------
RFC 3501 section 3 (figure in 3.5): a connection starts NOT_AUTHENTICATED
(or AUTHENTICATED after PREAUTH), moves to AUTHENTICATED after LOGIN or
AUTHENTICATE, to SELECTED after a successful SELECT/EXAMINE, back to
AUTHENTICATED after CLOSE/UNSELECT or a failed SELECT, and to LOGOUT after
LOGOUT (or a BYE).  The server application drives the transitions that depend
on outcomes (``ImapConnection.set_state()``); the core only enters LOGOUT by
itself.

``COMMANDS`` says where each command is legal.  Section 6 groups them:
6.1 any state, 6.2 not authenticated, 6.3 authenticated (which includes
selected: "in the selected state, commands that manipulate messages in a
mailbox are permitted ... in addition to the universal commands and the
authenticated state commands"), 6.4 selected.  A command outside its states
is answered BAD by the connection.  Extensions are filed where their RFC puts
them.  ``UID`` sub-commands have keys ``"UID FETCH"`` and so on.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
    AUTHENTICATED = "AUTHENTICATED"
    SELECTED = "SELECTED"
    LOGOUT = "LOGOUT"


N = State.NOT_AUTHENTICATED
A = State.AUTHENTICATED
S = State.SELECTED

_ANY = frozenset({N, A, S})
_NOT_AUTH = frozenset({N})
_AUTH = frozenset({A, S})
_SELECTED = frozenset({S})

COMMANDS: dict[str, frozenset[State]] = {
    # RFC 3501 6.1 (any state); RFC 2971 ID
    "CAPABILITY": _ANY,
    "NOOP": _ANY,
    "LOGOUT": _ANY,
    "ID": _ANY,
    # RFC 3501 6.2 (not authenticated); RFC 4959 SASL-IR
    "STARTTLS": _NOT_AUTH,
    "AUTHENTICATE": _NOT_AUTH,
    "LOGIN": _NOT_AUTH,
    # RFC 3501 6.3 (authenticated and selected)
    "SELECT": _AUTH,
    "EXAMINE": _AUTH,
    "CREATE": _AUTH,
    "DELETE": _AUTH,
    "RENAME": _AUTH,
    "SUBSCRIBE": _AUTH,
    "UNSUBSCRIBE": _AUTH,
    "LIST": _AUTH,
    "LSUB": _AUTH,
    "STATUS": _AUTH,
    "APPEND": _AUTH,
    "NAMESPACE": _AUTH,  # RFC 2342
    "ENABLE": _AUTH,  # RFC 5161 section 3.1
    "IDLE": _AUTH,  # RFC 2177
    # RFC 3501 6.4 (selected)
    "CHECK": _SELECTED,
    "CLOSE": _SELECTED,
    "UNSELECT": _SELECTED,  # RFC 3691
    "EXPUNGE": _SELECTED,
    "SEARCH": _SELECTED,
    "FETCH": _SELECTED,
    "STORE": _SELECTED,
    "COPY": _SELECTED,
    "MOVE": _SELECTED,  # RFC 6851
    "UID FETCH": _SELECTED,
    "UID SEARCH": _SELECTED,
    "UID STORE": _SELECTED,
    "UID COPY": _SELECTED,
    "UID MOVE": _SELECTED,
    "UID EXPUNGE": _SELECTED,  # RFC 4315 UIDPLUS
}

UID_COMMANDS = frozenset(name[4:] for name in COMMANDS if name.startswith("UID "))


def known(name: str) -> bool:
    """Is ``name`` (upper-case, ``"UID FETCH"`` style) a command we parse?"""
    return name in COMMANDS


def allowed(name: str, state: State) -> bool:
    """May ``name`` be used in ``state``?  Unknown names are never allowed."""
    return state in COMMANDS.get(name, frozenset())
