"""The core against a real client: stdlib poplib over a loopback socket.

A tiny blocking adapter (one thread, one connection) drives the core with
``FakeApp``; poplib then does what mail clients do.
"""

from __future__ import annotations

import poplib
import socket
import threading

from mailgw.protocols.pop3 import NEED_DATA, PAUSED, Close, ConnectionClosed, SendData

from .helpers import MESSAGES, FakeApp, make_conn


def serve_one(listener: socket.socket, app: FakeApp) -> None:
    sock, _ = listener.accept()
    with sock:
        conn = make_conn()
        sock.sendall(conn.greeting())
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                conn.receive_data(sock.recv(4096))
            elif isinstance(event, SendData):
                sock.sendall(event.data)
            elif isinstance(event, ConnectionClosed | Close):
                return
            else:
                assert event is not PAUSED
                sock.sendall(app.answer(conn, event))


def test_poplib_session() -> None:
    app = FakeApp(chunk=5)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        thread = threading.Thread(target=serve_one, args=(listener, app), daemon=True)
        thread.start()
        client = poplib.POP3("127.0.0.1", port, timeout=10)
        assert client.getwelcome() == b"+OK mail.example.org mailgw ready."
        caps = client.capa()
        assert "PIPELINING" in caps and "STLS" in caps
        client.user("alice")
        client.pass_("secret pw")
        assert client.stat() == (3, sum(len(m) for m in MESSAGES))
        _, lines, _ = client.retr(1)
        assert b"\r\n".join(lines) + b"\r\n" == MESSAGES[0]  # ".dot line" unstuffed
        _, lines, _ = client.retr(2)
        assert b"\r\n".join(lines) == MESSAGES[1]
        _, lines, _ = client.top(1, 1)
        assert lines == [b"Subject: one", b"From: a@example.org", b"", b"line 1"]
        _, uidls, _ = client.uidl()
        assert uidls == [b"1 UID00001", b"2 UID00002", b"3 UID00003"]
        client.dele(2)
        assert client.quit() == b"+OK Logging out."
        thread.join(timeout=10)
    assert app.expunged == [(1,)]
