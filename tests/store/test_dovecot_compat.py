"""A real Dovecot 2.3 serves a mailgw store as is, and we read what it writes."""

from __future__ import annotations

import calendar
import imaplib
import re
import time
from collections.abc import Iterator

import pytest

from mailgw.protocols.imap.utf7 import decode_mutf7, encode_mutf7
from mailgw.store import Store
from tests.interop.peers import DovecotInstance, dovecot_missing, peer_workdir

pytestmark = pytest.mark.interop

USER = "alice"
PASSWORD = "s3cret-pw"
FOLDERS = ["Sent", "Projects/2024", "Données"]
SUBSCRIBED = ["Sent", "Données", "Projects/2024"]


def _msg(n: int, body: str = "hello") -> bytes:
    return (
        f"From: a@example.org\r\nTo: alice@example.org\r\nSubject: message {n}\r\n"
        f"Message-ID: <{n}@example.org>\r\n\r\n{body} {n}\r\n"
    ).encode()


@pytest.fixture
def served() -> Iterator[tuple[Store, DovecotInstance]]:
    if (reason := dovecot_missing()) is not None:
        pytest.skip(reason)  # a failure under CI=true (marked interop: tests/conftest.py)
    with peer_workdir("mailgw-dovecot-") as work:
        store = Store(work / "mail")
        acct = store.account(USER)
        acct.ensure(special_use=False)
        for name in FOLDERS:
            acct.create_folder(name)
        for name in SUBSCRIBED:
            acct.subscribe(name)
        inbox = acct.folder("INBOX")
        old = calendar.timegm((2020, 5, 17, 10, 30, 0))
        inbox.deliver(_msg(1), internaldate=old)
        inbox.deliver(_msg(2), flags={"\\Seen", "\\Answered"})
        inbox.deliver(_msg(3), keywords={"$Label1", "Important"})
        inbox.deliver(_msg(4))  # expunged below: UIDNEXT stays above the last UID
        inbox.deliver(_msg(5, "bare\nlf"))
        store.deliver_many([(USER, "INBOX"), (USER, "Sent")], _msg(6))
        acct.folder("Sent").deliver(_msg(7), flags={"\\Seen"})
        proj = acct.folder("Projects/2024")
        proj.deliver(_msg(8), flags={"\\Flagged", "\\Draft"}, keywords={"todo"})
        acct.folder("Données").deliver(_msg(9, "café"))
        for name in acct.list_folders():
            acct.folder(name).messages()
        inbox.expunge([4])
        inbox.set_flags(1, frozenset({"\\Deleted"}), frozenset({"todo", "$Label1"}))
        with DovecotInstance.with_plain_users(work, {USER: PASSWORD}) as dc:
            yield store, dc


def _expected(store: Store) -> dict[str, dict[int, tuple[set[str], bytes, int]]]:
    acct = Store(store.mail_root).account(USER)  # a fresh Store: state read from disk
    out: dict[str, dict[int, tuple[set[str], bytes, int]]] = {}
    for name in acct.list_folders():
        f = acct.folder(name)
        # IMAP sends CRLF; Dovecot turns a bare LF into CRLF on the way out
        out[name] = {
            m.uid: (set(m.flags) | set(m.keywords), _crlf(f.read(m)), int(m.internaldate))
            for m in f.messages()
        }
    return out


def _crlf(data: bytes) -> bytes:
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


FETCH_RE = re.compile(
    rb"UID (\d+) RFC822.SIZE (\d+) FLAGS \(([^)]*)\) INTERNALDATE (\"[^\"]+\") "
    rb"BODY\[\] \{(\d+)\}$"
)


def _fetch_all(imap: imaplib.IMAP4) -> dict[int, tuple[set[str], bytes, int]]:
    typ, data = imap.uid("FETCH", "1:*", "(UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK", data
    got: dict[int, tuple[set[str], bytes, int]] = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        m = FETCH_RE.search(item[0])
        assert m, item[0]
        assert int(m.group(2)) == len(item[1])  # RFC822.SIZE comes from our W=
        flags = {f for f in m.group(3).decode().split() if f != "\\Recent"}
        when = imaplib.Internaldate2tuple(b"INTERNALDATE " + m.group(4))
        assert when is not None
        got[int(m.group(1))] = (flags, item[1], int(time.mktime(when)))
    return got


def test_dovecot_serves_our_store(served: tuple[Store, DovecotInstance]) -> None:
    store, dc = served
    acct = store.account(USER)
    expected = _expected(store)
    assert set(expected) == {"INBOX", *FOLDERS}
    assert sorted(expected["INBOX"]) == [1, 2, 3, 5, 6]

    # doveadm agrees on counts, UIDVALIDITY and UIDNEXT
    status = dc.mailbox_status(USER)
    for name in expected:
        f = acct.folder(name)
        assert status[name] == {
            "messages": len(expected[name]),
            "uidvalidity": f.uidvalidity,
            "uidnext": f.uidnext,
        }, name
    assert acct.folder("INBOX").uidnext == 7

    assert dc.imap_port is not None
    imap = imaplib.IMAP4("127.0.0.1", dc.imap_port)
    try:
        imap.login(USER, PASSWORD)
        typ, lines = imap.list()
        assert typ == "OK"
        listed = set()
        for raw in lines:
            assert isinstance(raw, bytes)
            m = re.match(rb'\(([^)]*)\) "/" (.+)$', raw)
            assert m, raw
            if b"\\Noselect" not in m.group(1) and b"\\NonExistent" not in m.group(1):
                listed.add(decode_mutf7(m.group(2).decode().strip('"')))
        assert listed == set(acct.list_folders())
        typ, lines = imap.lsub()
        assert typ == "OK"
        subscribed = [decode_mutf7(raw.split(b'"/" ', 1)[1].decode()) for raw in lines]  # type: ignore[union-attr]
        assert subscribed == acct.subscriptions() == SUBSCRIBED

        for name, messages in expected.items():
            wire = encode_mutf7(name)
            f = acct.folder(name)
            typ, st = imap.status(wire, "(MESSAGES UIDNEXT UIDVALIDITY)")
            assert typ == "OK"
            assert st[0] is not None
            assert f"MESSAGES {len(messages)} ".encode() in st[0]
            assert f"UIDNEXT {f.uidnext} ".encode() in st[0]
            assert f"UIDVALIDITY {f.uidvalidity})".encode() in st[0]
            typ, _ = imap.select(wire)
            assert typ == "OK"
            assert _fetch_all(imap) == messages, name

        # the other way round: Dovecot changes things, a fresh Store sees them
        imap.select("INBOX")
        typ, _ = imap.uid("STORE", "2", "+FLAGS", "(\\Flagged NewKeyword)")
        assert typ == "OK"
        typ, resp = imap.append("INBOX", "(\\Seen Important)", None, _msg(10))
        assert typ == "OK"
        assert resp[0] is not None
        appended_uid = int(re.search(rb"APPENDUID \d+ (\d+)", resp[0]).group(1))  # type: ignore[union-attr]
        dovecot_view = _fetch_all(imap)
    finally:
        imap.logout()
    after = Store(store.mail_root).account(USER).folder("INBOX")
    ours = {m.uid: (set(m.flags) | set(m.keywords), after.read(m)) for m in after.messages()}
    assert appended_uid == 7
    assert ours[2][0] == {"\\Seen", "\\Answered", "\\Flagged", "NewKeyword"}
    assert ours[7][0] == {"\\Seen", "Important"}
    # Dovecot saves with LF line endings; compare content modulo that
    assert ours[7][1].replace(b"\r\n", b"\n") == _msg(10).replace(b"\r\n", b"\n")
    assert {uid: v[0] for uid, v in ours.items()} == {uid: v[0] for uid, v in dovecot_view.items()}
    assert after.uidvalidity == acct.folder("INBOX").uidvalidity
    problems = [
        line
        for line in dc.log_text().splitlines()
        if re.search(r"\b(Error|Panic|Fatal|Warning):", line)
    ]
    assert problems == []
