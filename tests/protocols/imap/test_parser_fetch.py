"""Byte transcripts: FETCH and UID FETCH (sections, partials, macros, CHANGEDSINCE)."""

from __future__ import annotations

import pytest

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap.connection import ContinuationNeeded

from .helpers import A, check


def seq(*ranges: tuple[int, int]) -> c.SequenceSet:
    return c.SequenceSet(tuple(c.SeqRange(a, b) for a, b in ranges))


STAR = c.STAR
FLAGS, UID, SIZE = c.FetchAtt("FLAGS"), c.FetchAtt("UID"), c.FetchAtt("RFC822.SIZE")
DATE, ENV = c.FetchAtt("INTERNALDATE"), c.FetchAtt("ENVELOPE")


def test_macros_expand() -> None:
    check(
        b"a FETCH 1 ALL\r\nb FETCH 1:* fast\r\nc FETCH * FULL\r\n",
        [
            c.Fetch("a", seq((1, 1)), (FLAGS, DATE, SIZE, ENV)),
            c.Fetch("b", seq((1, STAR)), (FLAGS, DATE, SIZE)),
            c.Fetch("c", seq((STAR, STAR)), (FLAGS, DATE, SIZE, ENV, c.FetchAtt("BODY"))),
        ],
    )


def test_sequence_sets() -> None:
    check(
        b"a FETCH 1,3:5,*:7,9 FLAGS\r\nb FETCH $ UID\r\n",
        [
            c.Fetch("a", seq((1, 1), (3, 5), (STAR, 7), (9, 9)), (FLAGS,)),
            c.Fetch("b", c.SequenceSet(saved=True), (UID,)),
        ],
    )


def test_sequence_set_helpers() -> None:
    s = seq((5, 3), (STAR, STAR), (9, 9))
    assert s.iter(10) == [3, 4, 5, 9, 10]
    assert s.contains(4, 10) and s.contains(10, 10) and not s.contains(6, 10)


def test_body_sections() -> None:
    check(
        b"a FETCH 2 (BODY[] BODY.PEEK[HEADER] BODY[TEXT]<0.2048> BODY[1.2] BODY[1.2.MIME]"
        b" BODY[3.HEADER.FIELDS.NOT (Received x-spam)] body.peek[header.fields (From {2}\r\nTo)]"
        b" BODYSTRUCTURE BODY RFC822 RFC822.HEADER RFC822.TEXT MODSEQ)\r\n",
        [
            ContinuationNeeded("a", 2),
            c.Fetch(
                "a",
                seq((2, 2)),
                (
                    c.BodySection(),
                    c.BodySection(peek=True, text="HEADER"),
                    c.BodySection(text="TEXT", partial=(0, 2048)),
                    c.BodySection(part=(1, 2)),
                    c.BodySection(part=(1, 2), text="MIME"),
                    c.BodySection(
                        part=(3,), text="HEADER.FIELDS.NOT", fields=("RECEIVED", "X-SPAM")
                    ),
                    c.BodySection(peek=True, text="HEADER.FIELDS", fields=("FROM", "TO")),
                    c.FetchAtt("BODYSTRUCTURE"),
                    c.FetchAtt("BODY"),
                    c.FetchAtt("RFC822"),
                    c.FetchAtt("RFC822.HEADER"),
                    c.FetchAtt("RFC822.TEXT"),
                    c.FetchAtt("MODSEQ"),
                ),
            ),
        ],
    )


def test_uid_fetch_adds_uid_and_changedsince() -> None:
    check(
        b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n"
        b"b uid fetch 4 (FLAGS) (CHANGEDSINCE 7 VANISHED)\r\n"
        b"c FETCH 4 FLAGS (CHANGEDSINCE 1 VANISHED)\r\n",
        [
            c.Fetch("a", seq((1, STAR)), (FLAGS, UID), uid=True, changedsince=12345),
            c.Fetch("b", seq((4, 4)), (FLAGS, UID), uid=True, changedsince=7, vanished=True),
            b"c BAD VANISHED needs UID FETCH with CHANGEDSINCE\r\n",
        ],
    )


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"a FETCH 0 FLAGS", b"a BAD Invalid sequence number"),
        (b"a FETCH 1: FLAGS", b"a BAD Expected sequence number"),
        (b"a FETCH 4294967296 FLAGS", b"a BAD Invalid sequence number"),
        (b"a FETCH 1 (FLAGS", b"a BAD Missing argument"),
        (b"a FETCH 1 (FLAGS)x", b"a BAD Expected a space"),
        (b"a FETCH 1 ()", b"a BAD Expected fetch attribute"),
        (b"a FETCH 1 FOO", b"a BAD Unknown fetch attribute FOO"),
        (b"a FETCH 1 BODY[MIME]", b"a BAD MIME needs a section part"),
        (b"a FETCH 1 BODY[1.FOO]", b"a BAD Invalid body section"),
        (b"a FETCH 1 BODY[TEXT]<0.0>", b"a BAD Invalid partial length"),
        (b"a FETCH 1 BODY[HEADER.FIELDS ()]", b"a BAD Expected header name"),
        (b"a FETCH 1 BODY[HEADER", b"a BAD Expected ']'"),
        (b"a FETCH 1 FLAGS (FOO 1)", b"a BAD Unknown fetch modifier FOO"),
        (b"a UID FETCH", b"a BAD Missing argument"),
        (b"a UID NOOP", b"a BAD Unknown UID command"),
    ],
)
def test_fetch_errors(line: bytes, reply: bytes) -> None:
    check(line + b"\r\n", [reply + b"\r\n"])


def test_fetch_needs_selected_state() -> None:
    check(
        b"a FETCH 1 FLAGS\r\nb UID FETCH 1 FLAGS\r\n",
        [
            b"a BAD FETCH not valid in this state\r\n",
            b"b BAD UID FETCH not valid in this state\r\n",
        ],
        state=A,
    )
