"""POP3 session states and the command table.

RFC 1939 section 3: a session moves AUTHORIZATION -> TRANSACTION -> UPDATE.
``CLOSED`` is ours: the session is over (QUIT answered, EOF, too many bad
commands).  A command outside its states gets ``-ERR`` (section 3: "a POP3
server MUST respond to an unrecognized, unimplemented, or syntactically
invalid command by responding with a negative status indicator").

Arguments (RFC 2449 section 4): keywords are case-insensitive, arguments are
separated by spaces and are at most 40 octets each.  Exceptions, on purpose:

- USER and PASS take the rest of the line as their one argument, spaces
  included (RFC 1939 section 7 allows spaces in the password) and without the
  40-octet limit: ``first.last@sub.example.org`` and generated passwords are
  often longer.  ``max_line`` still bounds them.
- The AUTH initial response (RFC 5034 section 4) is not limited either.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_ARG = 40  # RFC 2449 section 4


class State(enum.Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"
    CLOSED = "CLOSED"


A = State.AUTHORIZATION
T = State.TRANSACTION


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    states: frozenset[State]
    min_args: int = 0
    max_args: int = 0
    limited_args: int = 0  # how many leading arguments obey MAX_ARG
    rest_of_line: bool = False  # one argument: everything after the first space


def _spec(
    name: str,
    states: set[State],
    min_args: int = 0,
    max_args: int = 0,
    *,
    limited_args: int | None = None,
    rest_of_line: bool = False,
) -> CommandSpec:
    return CommandSpec(
        name=name,
        states=frozenset(states),
        min_args=min_args,
        max_args=max_args,
        limited_args=max_args if limited_args is None else limited_args,
        rest_of_line=rest_of_line,
    )


COMMANDS: dict[bytes, CommandSpec] = {
    spec.name.encode("ascii"): spec
    for spec in (
        # RFC 1939 section 7 (USER, PASS), RFC 5034 (AUTH), RFC 2595 section 4 (STLS)
        _spec("USER", {A}, 1, 1, limited_args=0, rest_of_line=True),
        _spec("PASS", {A}, 1, 1, limited_args=0, rest_of_line=True),
        _spec("AUTH", {A}, 0, 2, limited_args=1),
        _spec("STLS", {A}),
        # RFC 2449 section 5 (CAPA), RFC 1939 sections 5 and 6 (QUIT)
        _spec("CAPA", {A, T}),
        _spec("QUIT", {A, T}),
        # RFC 1939 section 5 (TRANSACTION), section 7 (TOP, UIDL)
        _spec("STAT", {T}),
        _spec("LIST", {T}, 0, 1),
        _spec("RETR", {T}, 1, 1),
        _spec("DELE", {T}, 1, 1),
        _spec("NOOP", {T}),
        _spec("RSET", {T}),
        _spec("TOP", {T}, 2, 2),
        _spec("UIDL", {T}, 0, 1),
    )
}


def lookup(keyword: bytes) -> CommandSpec | None:
    """The spec for a command keyword (any case), or None if unknown."""
    return COMMANDS.get(keyword.upper())


def allowed(spec: CommandSpec, state: State) -> bool:
    return state in spec.states
