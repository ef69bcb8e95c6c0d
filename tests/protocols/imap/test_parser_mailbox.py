"""Byte transcripts: SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST, LSUB, STATUS."""

from __future__ import annotations

import pytest

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap.connection import ContinuationNeeded

from .helpers import A, N, S, check


def test_select_examine_inbox_normalised() -> None:
    check(
        b'a SELECT inbox\r\nb EXAMINE InBoX\r\nc SELECT INBOX.sub\r\nd select "Inbox"\r\n',
        [
            c.Select("a", "INBOX"),
            c.Examine("b", "INBOX"),
            c.Select("c", "INBOX.sub"),
            c.Select("d", "INBOX"),
        ],
        state=A,
    )


def test_select_condstore() -> None:
    check(
        b"a SELECT INBOX (CONDSTORE)\r\nb SELECT INBOX (QRESYNC)\r\n",
        [c.Select("a", "INBOX", condstore=True), b"b BAD Unknown SELECT parameter QRESYNC\r\n"],
        state=A,
    )


def test_select_needs_authentication() -> None:
    check(b"a SELECT INBOX\r\n", [b"a BAD SELECT not valid in this state\r\n"], state=N)


def test_modified_utf7_names() -> None:
    check(
        b'a CREATE "Donn&AOk-es"\r\nb RENAME {5}\r\nTrash "&ZeVnLIqe-"\r\n'
        b'c DELETE &-x\r\nd SUBSCRIBE Sent\r\ne UNSUBSCRIBE "Sent Items"\r\n',
        [
            c.Create("a", "Données"),
            ContinuationNeeded("b", 5),
            c.Rename("b", "Trash", "日本語"),
            c.Delete("c", "&x"),
            c.Subscribe("d", "Sent"),
            c.Unsubscribe("e", "Sent Items"),
        ],
        state=A,
    )


@pytest.mark.parametrize(
    "name", [b'"&Jjo"', b"&AGE-", b'"caf\xc3\xa9"', b'"a&ZeVnLIqe-&ZeVnLIqe-"']
)
def test_invalid_modified_utf7_is_bad(name: bytes) -> None:
    check(
        b"a CREATE " + name + b"\r\n",
        [b"a BAD Mailbox name is not valid modified UTF-7\r\n"],
        state=A,
    )


def test_list_basic_and_lsub() -> None:
    check(
        b'a LIST "" *\r\nb LIST "" ""\r\nc LIST ~/Mail/ %\r\nd LSUB "" "&ZeVnLIqe-/*"\r\n',
        [
            c.List("a", "", ("*",)),
            c.List("b", "", ("",)),
            c.List("c", "~/Mail/", ("%",)),
            c.Lsub("d", "", "日本語/*"),
        ],
        state=A,
    )


def test_list_extended() -> None:
    check(
        b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" (INBOX "Sent*") RETURN (CHILDREN)\r\n'
        b'b LIST "" % RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN HIGHESTMODSEQ))\r\n'
        b'c LIST (special-use) "" * return ()\r\n',
        [
            c.List(
                "a",
                "",
                ("INBOX", "Sent*"),
                select=("SUBSCRIBED", "RECURSIVEMATCH"),
                returns=("CHILDREN",),
                extended=True,
            ),
            c.List(
                "b",
                "",
                ("%",),
                returns=("SPECIAL-USE", "STATUS"),
                status=("MESSAGES", "UNSEEN", "HIGHESTMODSEQ"),
                extended=True,
            ),
            c.List("c", "", ("*",), select=("SPECIAL-USE",), extended=True),
        ],
        state=S,
    )


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b'a LIST (RECURSIVEMATCH) "" *', b"a BAD RECURSIVEMATCH needs another selection option"),
        (b'a LIST (FOO) "" *', b"a BAD Unknown LIST selection option FOO"),
        (b'a LIST "" * RETURN (FOO)', b"a BAD Unknown LIST return option FOO"),
        (b'a LIST "" * RETURN (STATUS (BOGUS))', b"a BAD Unknown status item BOGUS"),
        (b'a LIST ""', b"a BAD Missing argument"),
        (b'a LIST "" * EXTRA', b"a BAD Expected RETURN"),
    ],
)
def test_list_errors(line: bytes, reply: bytes) -> None:
    check(line + b"\r\n", [reply + b"\r\n"], state=A)


def test_status() -> None:
    check(
        b"a STATUS INBOX (MESSAGES uidnext UIDVALIDITY UNSEEN RECENT HIGHESTMODSEQ SIZE)\r\n"
        b"b STATUS INBOX ()\r\nc STATUS INBOX (FOO)\r\nd STATUS INBOX MESSAGES\r\n",
        [
            c.Status(
                "a",
                "INBOX",
                ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT", "HIGHESTMODSEQ", "SIZE"),
            ),
            b"b BAD Empty status item list\r\n",
            b"c BAD Unknown status item FOO\r\n",
            b"d BAD Expected '('\r\n",
        ],
        state=A,
    )


def test_mailbox_literal_over_limit_is_refused_unread() -> None:
    check(
        b"a CREATE {70000}\r\nb NOOP\r\n",
        [b"a BAD Literal too large.\r\n", c.Noop("b")],
        state=A,
    )
