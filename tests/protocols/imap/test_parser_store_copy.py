"""Byte transcripts: STORE, COPY, MOVE, EXPUNGE / UID EXPUNGE, CHECK, CLOSE, UNSELECT."""

from __future__ import annotations

import pytest

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap.connection import ContinuationNeeded

from .helpers import A, check, one


def test_store_modes_and_silent() -> None:
    check(
        b"a STORE 1 FLAGS (\\Seen)\r\nb STORE 1:3 +FLAGS.SILENT (\\deleted $Junk)\r\n"
        b"c UID STORE 5 -flags \\Flagged \\Draft\r\nd STORE 2 FLAGS ()\r\n"
        b"e STORE 2 +FLAGS (\\X-Custom)\r\n",
        [
            c.Store("a", one(1), "REPLACE", ("\\Seen",)),
            c.Store("b", one(1, 3), "ADD", ("\\Deleted", "$Junk"), silent=True),
            c.Store("c", one(5), "REMOVE", ("\\Flagged", "\\Draft"), uid=True),
            c.Store("d", one(2), "REPLACE", ()),
            c.Store("e", one(2), "ADD", ("\\X-Custom",)),
        ],
    )


def test_store_unchangedsince() -> None:
    check(
        b"a UID STORE 1:* (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n",
        [
            c.Store(
                "a",
                one(1, c.STAR),
                "ADD",
                ("\\Deleted",),
                silent=True,
                uid=True,
                unchangedsince=320162338,
            )
        ],
    )


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"a STORE 1 +FLAGS (\\Recent)", b"a BAD \\Recent cannot be set by the client"),
        (b"a STORE 1 *FLAGS (\\Seen)", b"a BAD Expected FLAGS"),
        (b"a STORE 1 FLAGS.LOUD (\\Seen)", b"a BAD Expected a space"),
        (b"a STORE 1 FLAGS (\\Seen", b"a BAD Missing argument"),
        (b"a STORE 1 FLAGS (\\ )", b"a BAD Expected flag"),
        (b"a STORE 1 (UNCHANGEDSINCE x) FLAGS ()", b"a BAD Expected mod-sequence"),
        (b"a STORE 1", b"a BAD Missing argument"),
    ],
)
def test_store_errors(line: bytes, reply: bytes) -> None:
    check(line + b"\r\n", [reply + b"\r\n"])


def test_copy_move() -> None:
    check(
        b'a COPY 1:2 Trash\r\nb UID COPY 4,6 "Sent Items"\r\nc MOVE * inbox\r\n'
        b"d UID MOVE 1 {4}\r\nJunk\r\n",
        [
            c.Copy("a", one(1, 2), "Trash"),
            c.Copy("b", c.SequenceSet((c.SeqRange(4, 4), c.SeqRange(6, 6))), "Sent Items", True),
            c.Move("c", one(c.STAR), "INBOX"),
            ContinuationNeeded("d", 4),
            c.Move("d", one(1), "Junk", True),
        ],
    )


def test_expunge_and_uid_expunge() -> None:
    check(
        b"a EXPUNGE\r\nb UID EXPUNGE 3:5\r\nc EXPUNGE 1\r\nd UID EXPUNGE\r\n",
        [
            c.Expunge("a"),
            c.Expunge("b", one(3, 5)),
            b"c BAD Unexpected extra arguments\r\n",
            b"d BAD Missing argument\r\n",
        ],
    )


def test_selected_only_commands() -> None:
    check(
        b"a CHECK\r\nb CLOSE\r\nc UNSELECT\r\n",
        [c.Check("a"), c.Close("b"), c.Unselect("c")],
    )
    check(
        b"a CLOSE\r\nb COPY 1 x\r\nc UID EXPUNGE 1\r\n",
        [
            b"a BAD CLOSE not valid in this state\r\n",
            b"b BAD COPY not valid in this state\r\n",
            b"c BAD UID EXPUNGE not valid in this state\r\n",
        ],
        state=A,
    )
