"""Test helpers: a scripted application and a transcript driver.

``run()`` feeds bytes to a ``Pop3Connection`` (whole, or one byte at a time),
answers every application event through ``FakeApp`` and returns what the
server wrote plus the events it saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mailgw.protocols.pop3 import (
    NEED_DATA,
    PAUSED,
    Authenticate,
    Close,
    ConnectionClosed,
    Event,
    Flow,
    Pop3Connection,
    Quit,
    Retr,
    SendData,
    StartTls,
    Top,
    Update,
)

MSG1 = b"Subject: one\r\nFrom: a@example.org\r\n\r\nline 1\r\n.dot line\r\nline 3\r\n"
MSG2 = b"Subject: two\r\n\r\n..two dots\r\nlast line no newline"
MSG3 = b"Subject: three\r\n\r\nthird\r\n"
MESSAGES = [MSG1, MSG2, MSG3]
MAILDROP = [(len(m), f"UID{i + 1:05d}") for i, m in enumerate(MESSAGES)]
USERS = {"alice": "secret pw", "bob": "hunter2"}


def make_conn(**kwargs: object) -> Pop3Connection:
    options: dict[str, object] = {
        "hostname": "mail.example.org",
        "tls_active": False,
        "stls_available": True,
        "plaintext_auth_allowed": True,
    }
    options.update(kwargs)
    return Pop3Connection(**options)  # type: ignore[arg-type]


@dataclass
class FakeApp:
    """Answers events the way a server session would, from in-memory data."""

    messages: Sequence[bytes] = tuple(MESSAGES)
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    chunk: int = 7  # RETR body chunk size
    in_use: bool = False
    buffered_at_stls: list[bool] = field(default_factory=list)
    expunged: list[tuple[int, ...]] = field(default_factory=list)

    def answer(self, conn: Pop3Connection, event: Event) -> bytes:
        if isinstance(event, Authenticate):
            if event.authzid not in ("", event.username):
                return conn.auth_failed()
            if self.users.get(event.username) != event.password:
                return conn.auth_failed()
            if self.in_use:
                return conn.auth_in_use()
            return conn.auth_ok([(len(m), f"UID{i + 1:05d}") for i, m in enumerate(self.messages)])
        if isinstance(event, StartTls):
            self.buffered_at_stls.append(conn.has_buffered_data())
            out = conn.starttls_ok()
            conn.tls_started()
            return out
        if isinstance(event, Retr):
            data = self.messages[event.index]
            out = conn.retr_start(len(data))
            for i in range(0, len(data), self.chunk):
                out += conn.body(data[i : i + self.chunk])
            return out + conn.body_end()
        if isinstance(event, Top):
            return conn.top(self.messages[event.index], event.lines)
        if isinstance(event, Update):
            self.expunged.append(event.deleted)
            return conn.update_done(True)
        if isinstance(event, Quit):
            return conn.quit_ok()
        raise AssertionError(f"unexpected event {event!r}")


def drain(conn: Pop3Connection, app: FakeApp, out: bytearray, events: list[Event]) -> bool:
    """Process events until NEED_DATA; False once the session ended."""
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return True
        assert event is not PAUSED, "FakeApp answers every event at once"
        assert not isinstance(event, Flow)
        events.append(event)
        if isinstance(event, SendData):
            out += event.data
        elif isinstance(event, Close):
            out += event.data
            return False
        elif isinstance(event, ConnectionClosed):
            return False
        else:
            out += app.answer(conn, event)


def run(
    conn: Pop3Connection,
    data: bytes,
    *,
    bytewise: bool = False,
    app: FakeApp | None = None,
    eof: bool = False,
) -> tuple[bytes, list[Event]]:
    app = app or FakeApp()
    out = bytearray()
    events: list[Event] = []
    chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    if eof:
        chunks.append(b"")
    for chunk in chunks:
        conn.receive_data(chunk)
        if not drain(conn, app, out, events):
            break
    return bytes(out), events


def login(conn: Pop3Connection, app: FakeApp | None = None) -> None:
    out, _ = run(conn, b"USER alice\r\nPASS secret pw\r\n", app=app)
    assert out == b"+OK\r\n+OK Logged in.\r\n"


def sent(events: list[Event]) -> list[Event]:
    """Events other than SendData."""
    return [e for e in events if not isinstance(e, SendData)]
