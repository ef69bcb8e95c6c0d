"""IMAP4rev1 server connection: bytes in, typed commands out (sans-IO).

Theory of operation
-------------------
The adapter writes its greeting, then loops: ``receive_data(bytes)`` (``b""``
at EOF) and ``next_event()`` until ``NEED_DATA``.  ``next_event()`` returns:

- a :class:`~mailgw.protocols.imap.commands.Command` (``Fetch``, ``Login``, ...):
  answer it with bytes from ``serializer.py``.  Commands come one at a time in
  the order sent; the adapter may pipeline its work as RFC 3501 5.5 allows.
- :class:`ContinuationNeeded` at a synchronizing literal ``{n}`` (RFC 3501
  7.5): write :data:`CONTINUE` (the core then reads the literal), or refuse
  with ``reject_literal()`` (e.g. ``NO [TRYCREATE]`` for APPEND).
- :class:`AppendData` for APPEND message literals (RFC 3501 6.3.11, RFC 3502
  MULTIAPPEND): the octets as they arrive, ``final`` on each message's last
  chunk.  The core never holds a message: stream it to a tmp file.  The
  ``Append`` command follows once the whole command has arrived; on a
  ``RemoteProtocolError`` or ``ConnectionClosed`` in between, discard the
  tmp files.
- :class:`ConnectionClosed` at EOF or after LOGOUT / a BYE;
  :class:`Bye` when the core gives up (too many bad commands, an oversized
  non-synchronizing literal): write ``data`` and close.
- ``RemoteProtocolError`` (raised) for a bad command: write ``reply`` (a
  tagged ``BAD``, or untagged ``* BAD`` when no tag could be read; a few
  semantic refusals are ``NO``) and go on calling ``next_event()``.

Rules and where they come from:

- States and the command table are in ``state.py`` (RFC 3501 section 3); a
  command in the wrong state gets BAD.  Tag, name and state are checked at
  the first literal already, so a wrong command never gets a "+".
- Limits: a line (CRLF included) may be ``max_line_before_auth`` octets
  before authentication and ``max_line_after_auth`` after
  (``set_authenticated()``); an over-long line gets ``BAD Line too long``
  and is discarded as it arrives.  Literals other than APPEND messages may be
  ``max_literal`` octets (and no more than a line before authentication);
  a larger synchronizing literal gets BAD without being read.  APPEND
  messages may be ``append_limit`` octets (RFC 7889 APPENDLIMIT), else
  ``NO [TOOBIG]`` before the "+".
- Non-synchronizing literals ``{n+}`` (RFC 7888): with ``literal_plus`` any
  size up to the limits (LITERAL+), else at most 4096 octets (LITERAL-,
  RFC 7888 section 5).  Beyond that the client has already started sending,
  so the core answers ``* BYE [TOOBIG]`` and stops (RFC 7888 section 4).
- After ``max_bad_commands`` BAD replies the next bad command ends the
  session with ``* BYE``.
- IDLE (RFC 2177): after the ``Idle`` command, the next line must be
  ``DONE`` (event :class:`~mailgw.protocols.imap.commands.Done`); any other
  line raises ``tag BAD``, which also ends the IDLE.
- AUTHENTICATE (RFC 3501 6.2.2): ``sasl_continue(challenge)`` returns the
  ``+`` line; the client's next line comes back as ``SaslResponse``
  (``data=None`` for ``*``, cancel).
- STARTTLS (RFC 3501 6.2.1, CVE-2011-0411): refuse to upgrade when
  ``has_buffered_data()``; after the handshake call ``tls_started()``.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass
from typing import Literal

from mailgw.protocols.errors import LocalProtocolError, RemoteProtocolError
from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import serializer as s
from mailgw.protocols.imap.lexer import (
    Chunk,
    Complete,
    Framer,
    Line,
    LiteralStart,
    ParseError,
    RawCommand,
    TooLong,
)
from mailgw.protocols.imap.parser import parse_append_prefix, parse_command, parse_head, read_tag
from mailgw.protocols.imap.state import State, allowed, known

LITERAL_MINUS_MAX = 4096  # RFC 7888 section 5
CONTINUE = b"+ Ready for literal data\r\n"


class Flow(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return self.value


NEED_DATA: Literal[Flow.NEED_DATA] = Flow.NEED_DATA


@dataclass(frozen=True, slots=True)
class ContinuationNeeded:
    """A synchronizing literal was announced: write ``CONTINUE`` or ``reject_literal()``.

    ``mailbox`` is set when the literal is an APPEND message (the target mailbox).
    """

    tag: str
    size: int = 0
    mailbox: str | None = None


@dataclass(frozen=True, slots=True)
class AppendData:
    """Octets of an APPEND message literal; ``final`` on its last chunk."""

    tag: str
    chunk: bytes
    final: bool


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """EOF, LOGOUT, or the session already ended."""


@dataclass(frozen=True, slots=True)
class Bye:
    """The core ends the session: write ``data`` (ends with ``* BYE``) and close."""

    reason: str
    data: bytes


Event = c.Command | ContinuationNeeded | AppendData | ConnectionClosed | Bye


def _reply(tag: str | None, status: str, text: str, code: str | None = None) -> bytes:
    if tag is None:
        return s.untagged(status, text, code)
    return s.tagged(tag, status, text, code)


class ImapConnection:
    def __init__(
        self,
        *,
        max_line_before_auth: int = 8192,
        max_line_after_auth: int = 65536,
        max_literal: int = 65536,
        append_limit: int = 50 * 1024 * 1024,
        literal_plus: bool = True,
        max_bad_commands: int = 20,
        state: State = State.NOT_AUTHENTICATED,
    ) -> None:
        if min(max_line_before_auth, max_line_after_auth) < 64:
            raise LocalProtocolError("line limits must be at least 64 octets")
        if max_literal < 0 or append_limit < 0 or max_bad_commands < 0:
            raise LocalProtocolError("limits must not be negative")
        self.max_line_before_auth = max_line_before_auth
        self.max_line_after_auth = max_line_after_auth
        self.max_literal = max_literal
        self.append_limit = append_limit
        self.literal_plus = literal_plus
        self.max_bad_commands = max_bad_commands
        self.bad_commands = 0
        self._framer = Framer(max_line_before_auth, max_line_before_auth)
        self._state = State.NOT_AUTHENTICATED
        self._eof = False
        self._closed = False
        self._append_tag = ""
        self._idle_tag: str | None = None
        self._sasl_tag: str | None = None  # AUTHENTICATE in progress
        self._literal_tag: str | None = None  # a ContinuationNeeded that may be rejected
        self.set_state(state)

    # --- state and limits --------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def idling(self) -> bool:
        return self._idle_tag is not None

    def set_state(self, state: State) -> None:
        """Enter ``state`` (after LOGIN OK, SELECT OK, CLOSE, ...); adjusts the limits."""
        self._state = state
        if state is State.LOGOUT:
            self._closed = True
        authed = state in (State.AUTHENTICATED, State.SELECTED)
        line = self.max_line_after_auth if authed else self.max_line_before_auth
        self._framer.max_line = line
        self._framer.max_command = line + self._literal_limit()

    def set_authenticated(self, authenticated: bool) -> None:
        self.set_state(State.AUTHENTICATED if authenticated else State.NOT_AUTHENTICATED)

    def _literal_limit(self) -> int:
        if self._state in (State.AUTHENTICATED, State.SELECTED):
            return self.max_literal
        return min(self.max_literal, self.max_line_before_auth)

    def has_buffered_data(self) -> bool:
        """True if octets after the last complete command wait (check before STARTTLS)."""
        return self._framer.has_data()

    @property
    def buffered_size(self) -> int:
        """Octets the core holds in memory right now."""
        return self._framer.buffered

    # --- input ----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self._closed:
            return
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data() after EOF")
        self._framer.feed(data)

    def next_event(self) -> Event | Flow:
        if self._closed:
            return ConnectionClosed()
        while True:
            item = self._framer.next()
            if item is None:
                if self._eof:
                    self._close()
                    return ConnectionClosed()
                return NEED_DATA
            if isinstance(item, Chunk):
                return AppendData(self._append_tag, item.data, item.final)
            self._literal_tag = None
            if isinstance(item, LiteralStart):
                event = self._literal(item)
                if event is not None:
                    return event
                continue
            if isinstance(item, Complete):
                if not item.raw.data:
                    continue  # empty lines are ignored, as most servers do
                return self._complete(item.raw)
            if isinstance(item, Line):
                return self._raw_line(item.data)
            assert isinstance(item, TooLong)
            self._end_special_modes()
            return self._fail(read_tag(item.head), f"{item.what} too long")

    def _close(self) -> None:
        self._closed = True
        self._framer.clear()

    def _end_special_modes(self) -> None:
        self._idle_tag = None
        self._sasl_tag = None
        self._framer.raw_lines = False

    def _fail(self, tag: str | None, text: str, *, counts: bool = True) -> Bye:
        """Raise the BAD reply, or return a Bye once there were too many."""
        reply = _reply(tag, "BAD", text)
        if counts:
            self.bad_commands += 1
        if self.bad_commands > self.max_bad_commands:
            self._close()
            return Bye("too many bad commands", reply + s.bye("Too many invalid commands."))
        raise RemoteProtocolError(reply)

    def _bye(self, reason: str, data: bytes) -> Bye:
        self._close()
        return Bye(reason, data)

    # --- literals ---------------------------------------------------------------------

    def _literal(self, item: LiteralStart) -> Event | None:
        framer = self._framer
        message_box: str | None = None
        tag: str | None = read_tag(item.prefix)
        try:
            tag, name = parse_head(item.prefix)
            if not known(name):
                raise ParseError("Unknown command")
            if not allowed(name, self._state):
                raise ParseError(f"{name} not valid in this state")
            if name == "APPEND":
                raw = RawCommand(item.prefix, framer.streamed_offsets)
                message_box = parse_append_prefix(raw, item.offset)
        except ParseError as exc:
            if not item.sync and item.size > self._max_nonsync(message_box is not None):
                return self._bye("literal too large", s.bye("Literal too large.", "TOOBIG"))
            if item.sync:
                framer.drop_command()
            else:
                framer.skip_literal()  # discarded as it arrives, never buffered
            return self._fail(tag, exc.text)
        assert tag is not None
        message = message_box is not None
        if not item.sync and item.size > self._max_nonsync(message):
            # RFC 7888 section 4: the data is already on its way; we will not read it.
            return self._bye("literal too large", s.bye("Literal too large.", "TOOBIG"))
        if message and item.size > self.append_limit:
            framer.drop_command()
            raise RemoteProtocolError(
                s.tagged(tag, "NO", "Message too large.", "TOOBIG")  # RFC 7889 section 4
            )
        if not message and item.size > self._literal_limit():
            framer.drop_command()
            return self._fail(tag, "Literal too large.")
        if not message and len(item.prefix) + item.size > framer.max_command:
            if not item.sync:
                return self._bye("command too long", s.bye("Command too long.", "TOOBIG"))
            framer.drop_command()
            return self._fail(tag, "Command too long.")
        framer.accept_literal(stream=message)
        if message:
            self._append_tag = tag
        if not item.sync:
            return None
        self._literal_tag = tag
        return ContinuationNeeded(tag, item.size, message_box)

    def _max_nonsync(self, message: bool) -> int:
        limit = self.append_limit if message else self._literal_limit()
        return limit if self.literal_plus else min(limit, LITERAL_MINUS_MAX)

    def reject_literal(self, text: str, code: str | None = None, status: str = "NO") -> bytes:
        """Refuse the literal of the last ContinuationNeeded instead of sending "+"."""
        tag = self._literal_tag
        if tag is None:
            raise LocalProtocolError("no synchronizing literal is waiting")
        try:
            self._framer.abort_literal()
        except RuntimeError:
            raise LocalProtocolError("the literal is already being read") from None
        self._literal_tag = None
        return s.tagged(tag, status, text, code)

    # --- complete commands --------------------------------------------------------------

    def _complete(self, raw: RawCommand) -> Event:
        try:
            tag, name = parse_head(raw.data)
        except ParseError as exc:
            return self._fail(read_tag(raw.data), exc.text)
        if not known(name):
            return self._fail(tag, "Unknown command")
        if not allowed(name, self._state):
            return self._fail(tag, f"{name} not valid in this state")
        try:
            command = parse_command(raw)
        except ParseError as exc:
            if exc.status != "BAD":
                raise RemoteProtocolError(_reply(tag, exc.status, exc.text, exc.code)) from None
            return self._fail(tag, exc.text)
        if isinstance(command, c.Idle):
            self._idle_tag = tag
            self._framer.raw_lines = True
        elif isinstance(command, c.Authenticate):
            self._sasl_tag = tag
        elif isinstance(command, c.Logout):
            self._state = State.LOGOUT
            self._closed = True
        return command

    # --- IDLE and SASL lines ----------------------------------------------------------------

    def _raw_line(self, line: bytes) -> Event:
        if self._idle_tag is not None:
            tag = self._idle_tag
            self._end_special_modes()
            if line.upper() == b"DONE":  # RFC 2177 section 3
                return c.Done(tag)
            return self._fail(tag, "Expected DONE")
        tag = self._sasl_tag or "*"
        self._end_special_modes()
        if line == b"*":  # RFC 3501 6.2.2: cancel
            return c.SaslResponse(tag, None)
        try:
            if len(line) % 4:
                raise ValueError
            data = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            return self._fail(tag, "Invalid base64 in SASL response")
        return c.SaslResponse(tag, data)

    def sasl_continue(self, challenge: bytes = b"") -> bytes:
        """The ``+ base64`` challenge line; the client's answer becomes a SaslResponse."""
        if self._sasl_tag is None:
            raise LocalProtocolError("no AUTHENTICATE in progress")
        self._framer.raw_lines = True
        return s.continuation_base64(challenge)

    def sasl_done(self) -> None:
        """The AUTHENTICATE exchange ended (success or failure)."""
        self._end_special_modes()

    def tls_started(self) -> None:
        """TLS is up: forget every octet received in plaintext (RFC 3501 6.2.1)."""
        self._framer.clear()
        self._end_special_modes()
