"""LocalProtocolError: the application misusing the core."""

from __future__ import annotations

import pytest

from mailgw.protocols.pop3 import LocalProtocolError, RemoteProtocolError

from .helpers import make_conn


def test_remote_error_carries_reply() -> None:
    err = RemoteProtocolError(b"-ERR nope\r\n")
    assert err.reply == b"-ERR nope\r\n"
    assert str(err) == "-ERR nope"


@pytest.mark.parametrize(
    "kwargs",
    [{"hostname": ""}, {"hostname": "a\r\nb"}, {"hostname": "<x@y>"}, {"max_bad_commands": -1}],
)
def test_bad_constructor_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        make_conn(**kwargs)


def test_max_line_too_small() -> None:
    with pytest.raises(ValueError):
        make_conn(max_line=2)


def test_answer_without_pending_event() -> None:
    conn = make_conn()
    for call in (
        lambda: conn.auth_ok([]),
        conn.auth_failed,
        conn.auth_in_use,
        conn.starttls_ok,
        conn.tls_started,
        conn.body_end,
        conn.update_done,
        conn.quit_ok,
        lambda: conn.top(b""),
    ):
        with pytest.raises(LocalProtocolError):
            call()


@pytest.mark.parametrize(
    "maildrop",
    [
        [(10, "")],
        [(10, "has space")],
        [(10, "x" * 71)],
        [(-1, "ok")],
        [(True, "ok")],
        [("10", "ok")],
        [(10,)],
        [(10, "ü")],
    ],
)
def test_invalid_maildrop(maildrop: list[tuple[object, ...]]) -> None:
    conn = make_conn()
    conn.receive_data(b"USER a\r\nPASS b\r\n")
    conn.next_event()
    conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.auth_ok(maildrop)  # type: ignore[arg-type]


def test_reply_text_must_be_one_line() -> None:
    conn = make_conn()
    conn.receive_data(b"USER a\r\nPASS b\r\n")
    conn.next_event()
    conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.auth_failed("bad\r\n+OK Logged in.")
    assert conn.auth_failed("Nope.") == b"-ERR [AUTH] Nope.\r\n"


def test_data_after_eof() -> None:
    conn = make_conn()
    conn.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"CAPA\r\n")
