"""POP3 server connection: bytes in, events out, reply bytes back (sans-IO).

Theory of operation
-------------------
The adapter sends ``greeting()``, then loops: ``receive_data(bytes)`` (``b""``
at EOF) and ``next_event()`` until it says ``NEED_DATA``.  Each command line
yields exactly one event, so replies leave in command order even when a
client pipelines (RFC 2449 section 6.6):

- ``SendData``: commands the core answers alone (CAPA, NOOP, STAT, LIST,
  UIDL, DELE, RSET, USER, AUTH prompts, every ``-ERR``).
- ``Authenticate``, ``StartTls``, ``Retr``, ``Top``, ``Update``, ``Quit``: the
  application acts and answers through a method here that returns the bytes
  to send.  Until it answers, ``next_event()`` returns ``PAUSED`` and
  pipelined lines stay buffered.
- ``ConnectionClosed`` at EOF or once the session is over; ``Close`` after
  more than ``max_bad_commands`` bad commands (the core stops reading).

States (``state.py``; RFC 1939 section 3): AUTHORIZATION -> TRANSACTION
(after ``auth_ok()``) -> UPDATE (QUIT; section 6) -> CLOSED.  Inside
AUTHORIZATION the core remembers a USER name and whether the next line is
a SASL continuation (RFC 5034 section 4).

Rules and where they come from:

- Greeting without an APOP timestamp (RFC 1939 section 4; APOP is not offered).
- Plaintext USER/PASS and AUTH PLAIN only over TLS unless
  ``plaintext_auth_allowed`` (RFC 2595 section 2.2), refused with the
  [AUTH] response code (RFC 3206 section 4).
- CAPA (RFC 2449 section 5) lists STLS only while it can still be used.
- After STLS, ``tls_started()`` forgets everything the client sent before
  the handshake (RFC 2595 section 4); the adapter must refuse to upgrade
  when ``has_buffered_data()`` (plaintext command injection, CVE-2011-0411).
- RETR and TOP bodies are byte-stuffed and terminated (RFC 1939 section 3).
- Limits: ``max_line`` octets per line, 40 octets per argument (RFC 2449
  section 4, exceptions in ``state.py``), ``max_bad_commands``.  Unknown,
  wrong-state, malformed and over-long commands are bad; a failing
  well-formed command (no such message, message deleted) is not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum, auto

from mailgw.protocols.errors import LocalProtocolError, RemoteProtocolError
from mailgw.protocols.pop3.dotstuff import DotStuffer, stuff, top_excerpt
from mailgw.protocols.pop3.events import (
    NEED_DATA,
    PAUSED,
    Authenticate,
    Close,
    ConnectionClosed,
    Event,
    Flow,
    Quit,
    Retr,
    SendData,
    StartTls,
    Top,
    Update,
)
from mailgw.protocols.pop3.lines import TOO_LONG, LineReader
from mailgw.protocols.pop3.maildrop import Maildrop, MessageError, parse_number
from mailgw.protocols.pop3.state import MAX_ARG, State, allowed, lookup
from mailgw.protocols.sasl import decode_plain

OK = b"+OK\r\n"
ERR_UNKNOWN = b"-ERR Unknown command.\r\n"
ERR_STATE = b"-ERR Command not valid in this state.\r\n"
ERR_LINE_TOO_LONG = b"-ERR Line too long.\r\n"
ERR_PLAINTEXT = (
    b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"
)
ERR_TOO_MANY_BAD = b"-ERR Too many bad commands.\r\n"


class _Pending(Enum):
    AUTH = auto()
    STLS = auto()
    TLS_HANDSHAKE = auto()
    RETR = auto()
    RETR_BODY = auto()
    TOP = auto()
    UPDATE = auto()
    QUIT = auto()


def _text(text: str) -> bytes:
    """App-supplied reply text: one line of printable ASCII."""
    if not text.isascii() or not text.isprintable():
        raise LocalProtocolError(f"reply text must be printable ASCII on one line: {text!r}")
    return text.encode("ascii")


def _decode(arg: bytes, what: str) -> str:
    try:
        return arg.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"-ERR Invalid UTF-8 in {what}.\r\n".encode()) from None


class Pop3Connection:
    def __init__(
        self,
        *,
        hostname: str,
        tls_active: bool,
        stls_available: bool,
        plaintext_auth_allowed: bool,
        max_line: int = 4096,
        max_bad_commands: int = 20,
        implementation: str = "mailgw",
    ) -> None:
        for name, value in (("hostname", hostname), ("implementation", implementation)):
            if not value or "<" in value or ">" in value:
                raise LocalProtocolError(f"invalid {name} {value!r}")
            _text(value)
        if max_bad_commands < 0:
            raise LocalProtocolError("max_bad_commands must be >= 0")
        self.hostname = hostname
        self.implementation = implementation
        self.plaintext_auth_allowed = plaintext_auth_allowed
        self.max_bad_commands = max_bad_commands
        self._tls_active = tls_active
        self._stls_available = stls_available
        self._reader = LineReader(max_line)
        self._eof = False
        self._state = State.AUTHORIZATION
        self._pending: _Pending | None = None
        self._user: str | None = None  # name from USER, waiting for PASS
        self._sasl = False  # next line is an AUTH PLAIN continuation
        self._maildrop: Maildrop | None = None
        self._retr_index = -1
        self._top_lines = 0
        self._stuffer: DotStuffer | None = None
        self.bad_commands = 0
        self._handlers: dict[str, Callable[[tuple[bytes, ...]], Event]] = {
            "USER": self._cmd_user,
            "PASS": self._cmd_pass,
            "AUTH": self._cmd_auth,
            "STLS": self._cmd_stls,
            "CAPA": self._cmd_capa,
            "QUIT": self._cmd_quit,
            "STAT": self._cmd_stat,
            "LIST": self._cmd_list,
            "RETR": self._cmd_retr,
            "DELE": self._cmd_dele,
            "NOOP": self._cmd_noop,
            "RSET": self._cmd_rset,
            "TOP": self._cmd_top,
            "UIDL": self._cmd_uidl,
        }

    # --- inspection --------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    @property
    def auth_allowed(self) -> bool:
        return self.plaintext_auth_allowed or self._tls_active

    def has_buffered_data(self) -> bool:
        """True if bytes after the current command are waiting (check before STLS)."""
        return self._reader.has_data()

    def greeting(self) -> bytes:
        return f"+OK {self.hostname} {self.implementation} ready.\r\n".encode("ascii")

    # --- input ----------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self._state is State.CLOSED:
            return  # the session is over; further input is ignored
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data() after EOF")
        self._reader.feed(data)

    def next_event(self) -> Event | Flow:
        if self._state is State.CLOSED:
            return ConnectionClosed()
        if self._pending is not None:
            return PAUSED
        item = self._reader.pop()
        if item is None:
            if self._eof:
                self._state = State.CLOSED
                return ConnectionClosed()
            return NEED_DATA
        if item is TOO_LONG:
            self._sasl = False
            return self._bad(ERR_LINE_TOO_LONG)
        assert isinstance(item, bytes)
        try:
            if self._sasl:
                self._sasl = False
                return self._sasl_response(item)
            return self._command(item)
        except RemoteProtocolError as exc:
            return self._bad(exc.reply)
        except MessageError as exc:
            return SendData(exc.reply)

    def _bad(self, reply: bytes) -> Event:
        self.bad_commands += 1
        if self.bad_commands > self.max_bad_commands:
            self._state = State.CLOSED
            self._reader.clear()
            return Close(reason="too many bad commands", data=ERR_TOO_MANY_BAD)
        return SendData(reply)

    def _command(self, line: bytes) -> Event:
        keyword, _, rest = line.partition(b" ")
        spec = lookup(keyword)
        if spec is None:
            raise RemoteProtocolError(ERR_UNKNOWN)
        if not allowed(spec, self._state):
            raise RemoteProtocolError(ERR_STATE)
        if spec.rest_of_line:
            args: tuple[bytes, ...] = (rest,) if rest else ()
        else:
            args = tuple(rest.split())
        if len(args) < spec.min_args:
            raise RemoteProtocolError(b"-ERR Missing argument.\r\n")
        if len(args) > spec.max_args:
            raise RemoteProtocolError(b"-ERR Too many arguments.\r\n")
        if any(len(arg) > MAX_ARG for arg in args[: spec.limited_args]):
            raise RemoteProtocolError(b"-ERR Argument too long.\r\n")
        return self._handlers[spec.name](args)

    def _wait(self, pending: _Pending, event: Event) -> Event:
        self._pending = pending
        return event

    # --- AUTHORIZATION (RFC 1939 section 4, 7; RFC 5034; RFC 2595) ---------

    def _cmd_user(self, args: tuple[bytes, ...]) -> Event:
        if not self.auth_allowed:
            return SendData(ERR_PLAINTEXT)
        self._user = _decode(args[0], "user name")
        return SendData(OK)

    def _cmd_pass(self, args: tuple[bytes, ...]) -> Event:
        if not self.auth_allowed:
            return SendData(ERR_PLAINTEXT)
        if self._user is None:
            return SendData(b"-ERR No user name given.\r\n")
        password = _decode(args[0], "password")
        user, self._user = self._user, None
        return self._wait(_Pending.AUTH, Authenticate("USER", user, password, ""))

    def _cmd_auth(self, args: tuple[bytes, ...]) -> Event:
        if not args:  # mechanism list, as Dovecot and others answer it
            return SendData(b"+OK\r\nPLAIN\r\n.\r\n" if self.auth_allowed else b"+OK\r\n.\r\n")
        if args[0].upper() != b"PLAIN":
            return SendData(b"-ERR Unsupported authentication mechanism.\r\n")
        if not self.auth_allowed:
            return SendData(ERR_PLAINTEXT)
        self._user = None
        if len(args) == 1:
            self._sasl = True
            return SendData(b"+ \r\n")
        initial = b"" if args[1] == b"=" else args[1]  # RFC 5034 section 4
        return self._plain(initial)

    def _sasl_response(self, line: bytes) -> Event:
        if line.strip() == b"*":  # RFC 5034 section 4: cancel
            return SendData(b"-ERR Authentication cancelled.\r\n")
        return self._plain(line)

    def _plain(self, response: bytes) -> Event:
        try:
            authzid, authcid, password = decode_plain(response)
        except ValueError:
            raise RemoteProtocolError(b"-ERR Invalid SASL PLAIN response.\r\n") from None
        return self._wait(_Pending.AUTH, Authenticate("PLAIN", authcid, password, authzid))

    def _cmd_stls(self, args: tuple[bytes, ...]) -> Event:
        if self._tls_active:
            return SendData(b"-ERR TLS is already active.\r\n")
        if not self._stls_available:
            return SendData(b"-ERR STLS is not available.\r\n")
        return self._wait(_Pending.STLS, StartTls())

    def _cmd_capa(self, args: tuple[bytes, ...]) -> Event:
        caps = ["CAPA", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self._state is State.AUTHORIZATION:
            if self.auth_allowed:
                caps += ["USER", "SASL PLAIN"]
            if self._stls_available and not self._tls_active:
                caps.append("STLS")
        caps.append(f"IMPLEMENTATION {self.implementation}")
        return SendData(("+OK\r\n" + "".join(c + "\r\n" for c in caps) + ".\r\n").encode("ascii"))

    def _cmd_quit(self, args: tuple[bytes, ...]) -> Event:
        if self._state is State.AUTHORIZATION:
            return self._wait(_Pending.QUIT, Quit())
        self._state = State.UPDATE  # RFC 1939 section 6
        return self._wait(_Pending.UPDATE, Update(self._drop().deleted))

    # --- TRANSACTION (RFC 1939 section 5, 7) -------------------------------

    def _drop(self) -> Maildrop:
        if self._maildrop is None:  # the state table makes this unreachable
            raise LocalProtocolError("no maildrop in TRANSACTION state")
        return self._maildrop

    def _cmd_stat(self, args: tuple[bytes, ...]) -> Event:
        return SendData(self._drop().stat())

    def _cmd_list(self, args: tuple[bytes, ...]) -> Event:
        return SendData(self._drop().list(args[0] if args else None))

    def _cmd_uidl(self, args: tuple[bytes, ...]) -> Event:
        return SendData(self._drop().uidl(args[0] if args else None))

    def _cmd_dele(self, args: tuple[bytes, ...]) -> Event:
        return SendData(self._drop().dele(args[0]))

    def _cmd_noop(self, args: tuple[bytes, ...]) -> Event:
        return SendData(OK)

    def _cmd_rset(self, args: tuple[bytes, ...]) -> Event:
        return SendData(self._drop().rset())

    def _cmd_retr(self, args: tuple[bytes, ...]) -> Event:
        index = self._drop().index(args[0])
        self._retr_index = index
        return self._wait(_Pending.RETR, Retr(msg=index + 1, index=index))

    def _cmd_top(self, args: tuple[bytes, ...]) -> Event:
        index = self._drop().index(args[0])
        lines = parse_number(args[1], "number of lines")
        self._retr_index, self._top_lines = index, lines
        return self._wait(_Pending.TOP, Top(msg=index + 1, index=index, lines=lines))

    # --- answers from the application ----------------------------------------

    def _answer(self, *expected: _Pending) -> _Pending:
        pending = self._pending
        if pending is None or pending not in expected:
            want = " or ".join(p.name for p in expected)
            have = pending.name if pending else "nothing"
            raise LocalProtocolError(f"answer for {want} while {have} is pending")
        return pending

    def auth_ok(self, maildrop: Sequence[tuple[int, str]]) -> bytes:
        """Credentials good, maildrop locked: (size, uidl) per message, in order."""
        self._answer(_Pending.AUTH)
        self._maildrop = Maildrop(maildrop)
        self._state = State.TRANSACTION
        self._pending = None
        return b"+OK Logged in.\r\n"

    def auth_failed(self, text: str = "Authentication failed.") -> bytes:
        """Bad credentials: ``-ERR [AUTH] text`` (RFC 3206 section 4).

        A ``text`` that starts with its own response code (``"[SYS/TEMP] ..."``)
        is sent as is: a reply carries one code (RFC 2449 section 8).
        """
        self._answer(_Pending.AUTH)
        code = b"" if text.startswith("[") else b"[AUTH] "
        reply = b"-ERR " + code + _text(text) + b"\r\n"
        self._pending = None
        return reply

    def auth_temp_failure(self, text: str = "Cannot open the maildrop.") -> bytes:
        """Credentials fine, the server cannot serve now: ``-ERR [SYS/TEMP]`` (RFC 3206)."""
        return self.auth_failed("[SYS/TEMP] " + text)

    def auth_in_use(self, text: str = "Mailbox is in use by another session.") -> bytes:
        self._answer(_Pending.AUTH)
        reply = b"-ERR [IN-USE] " + _text(text) + b"\r\n"  # RFC 2449 section 8.1.2
        self._pending = None
        return reply

    def starttls_ok(self) -> bytes:
        self._answer(_Pending.STLS)
        self._pending = _Pending.TLS_HANDSHAKE
        return b"+OK Begin TLS negotiation.\r\n"

    def tls_started(self) -> None:
        """The handshake succeeded: forget every pre-TLS byte and state (RFC 2595 section 4)."""
        self._answer(_Pending.TLS_HANDSHAKE)
        self._reader.clear()
        self._tls_active = True
        self._stls_available = False
        self._user = None
        self._sasl = False
        self._pending = None

    def retr_start(self, size: int | None = None, *, crlf: bool = False) -> bytes:
        """Begin the RETR reply; ``size`` defaults to the maildrop's size.

        ``crlf=True``: the application vouches that the message has no bare
        LF (its CRLF size equals its stored size), so ``body()`` skips the scan
        for one.  Without it a bare LF is sent as CRLF.
        """
        self._answer(_Pending.RETR)
        if size is None:
            size = self._drop().size(self._retr_index)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise LocalProtocolError(f"invalid size {size!r}")
        self._pending = _Pending.RETR_BODY
        self._stuffer = DotStuffer(crlf=crlf)
        return f"+OK {size} octets\r\n".encode("ascii")

    def body(self, chunk: bytes) -> bytes:
        self._answer(_Pending.RETR_BODY)
        assert self._stuffer is not None
        return self._stuffer.feed(chunk)

    def body_end(self) -> bytes:
        self._answer(_Pending.RETR_BODY)
        assert self._stuffer is not None
        tail = self._stuffer.end()
        self._stuffer = None
        self._pending = None
        return tail

    def retr_failed(self, text: str = "Message is no longer available.") -> bytes:
        """Answer a pending Retr or Top with -ERR (message vanished, read error)."""
        self._answer(_Pending.RETR, _Pending.TOP)
        reply = b"-ERR " + _text(text) + b"\r\n"
        self._pending = None
        return reply

    def top(self, message: bytes, lines: int | None = None) -> bytes:
        """The whole TOP reply for ``message`` (lines default to the command's)."""
        self._answer(_Pending.TOP)
        if lines is None:
            lines = self._top_lines
        if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
            raise LocalProtocolError(f"invalid line count {lines!r}")
        self._pending = None
        return OK + stuff(top_excerpt(message, lines))

    def update_done(self, ok: bool = True, text: str | None = None) -> bytes:
        """UPDATE finished (RFC 1939 section 6); the session is over."""
        self._answer(_Pending.UPDATE)
        if ok:
            reply = b"+OK " + _text(text or "Logging out.") + b"\r\n"
        else:
            reply = b"-ERR " + _text(text or "Some deleted messages not removed.") + b"\r\n"
        self._pending = None
        self._state = State.CLOSED
        return reply

    def quit_ok(self) -> bytes:
        self._answer(_Pending.QUIT)
        self._pending = None
        self._state = State.CLOSED
        return b"+OK Logging out.\r\n"
