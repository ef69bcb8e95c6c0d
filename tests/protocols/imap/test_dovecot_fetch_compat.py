"""Our FETCH structure answers against a real Dovecot 2.3 on the same Maildir.

The corpus is delivered into a private Dovecot's Maildir; for every message
imaplib fetches ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE, RFC822.HEADER and
a set of BODY.PEEK[section]<partial> items, one per command, and the
response (literals re-joined with the CRLF imaplib strips) is compared
byte-for-byte with ``serializer.fetch(seq, [fetch_item(...)])``.

Allowed differences: none are normalised.  (Whitespace between items is the
single SP both servers write; quoted-vs-literal choices are Dovecot's
because envelope.nstring/string_for_humans copy its rules.)
"""

from __future__ import annotations

import imaplib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailgw.protocols.imap import serializer
from mailgw.protocols.imap.commands import BodySection, FetchAtt
from mailgw.protocols.imap.mime import parse
from mailgw.protocols.imap.sections import fetch_item
from tests.interop.peers import DovecotInstance, PeerUnavailable, make_peer_dir

pytestmark = pytest.mark.interop

CORPUS = Path(__file__).parent / "corpus"
PASSWORD = "fetch-compat-Pw1"

ATTS = ["ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE", "RFC822.HEADER"]
SECTIONS: list[tuple[str, BodySection]] = [
    ("BODY.PEEK[]", BodySection(peek=True)),
    ("BODY.PEEK[HEADER]", BodySection(peek=True, text="HEADER")),
    ("BODY.PEEK[TEXT]", BodySection(peek=True, text="TEXT")),
    ("BODY.PEEK[1]", BodySection(peek=True, part=(1,))),
    ("BODY.PEEK[1.MIME]", BodySection(peek=True, part=(1,), text="MIME")),
    ("BODY.PEEK[2]", BodySection(peek=True, part=(2,))),
    ("BODY.PEEK[2.MIME]", BodySection(peek=True, part=(2,), text="MIME")),
    ("BODY.PEEK[2.HEADER]", BodySection(peek=True, part=(2,), text="HEADER")),
    ("BODY.PEEK[2.TEXT]", BodySection(peek=True, part=(2,), text="TEXT")),
    ("BODY.PEEK[2.1]", BodySection(peek=True, part=(2, 1))),
    ("BODY.PEEK[2.2]", BodySection(peek=True, part=(2, 2))),
    ("BODY.PEEK[2.1.MIME]", BodySection(peek=True, part=(2, 1), text="MIME")),
    ("BODY.PEEK[3]", BodySection(peek=True, part=(3,))),
    ("BODY.PEEK[1.1]", BodySection(peek=True, part=(1, 1))),
    (
        "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]",
        BodySection(peek=True, text="HEADER.FIELDS", fields=("FROM", "SUBJECT")),
    ),
    (
        "BODY.PEEK[HEADER.FIELDS.NOT (FROM SUBJECT CONTENT-TYPE)]",
        BodySection(
            peek=True, text="HEADER.FIELDS.NOT", fields=("FROM", "SUBJECT", "CONTENT-TYPE")
        ),
    ),
    (
        "BODY.PEEK[HEADER.FIELDS (X-NONE)]",
        BodySection(peek=True, text="HEADER.FIELDS", fields=("X-NONE",)),
    ),
    ("BODY.PEEK[]<0.10>", BodySection(peek=True, partial=(0, 10))),
    ("BODY.PEEK[TEXT]<5.20>", BodySection(peek=True, text="TEXT", partial=(5, 20))),
    ("BODY.PEEK[]<100000.10>", BodySection(peek=True, partial=(100000, 10))),
    ("BODY.PEEK[1]<2.5>", BodySection(peek=True, part=(1,), partial=(2, 5))),
]


def _crlf(data: bytes) -> bytes:
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def _raw_fetch(imap: imaplib.IMAP4, seq: int, item: str) -> bytes:
    typ, data = imap.fetch(str(seq), f"({item})")
    assert typ == "OK", (item, data)
    out = b""
    for el in data:
        if isinstance(el, tuple):
            out += el[0] + b"\r\n" + el[1]
        elif el is not None:
            out += el
    return out


@pytest.fixture(scope="module")
def dovecot_answers() -> Iterator[dict[str, dict[str, bytes]]]:
    """{corpus file: {item: Dovecot's response without "* " and CRLF}}."""
    root = make_peer_dir("mailgw-fetch-compat-")
    try:
        data = root / "data"
        maildir = data / "mail" / "alice" / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True)
        names = sorted(p.name for p in CORPUS.glob("*.eml"))
        for i, name in enumerate(names):
            target = maildir / "cur" / f"{1700000000 + i}.M{i}P1.compat:2,S"
            target.write_bytes((CORPUS / name).read_bytes())
        passwd = root / "users.passwd"
        passwd.write_text(f"alice:{{PLAIN}}{PASSWORD}::::::\n")
        try:
            dc = DovecotInstance(data, passwd, protocols=("imap",))
        except PeerUnavailable as exc:
            pytest.skip(f"Dovecot unavailable: {exc}")
        with dc:
            assert dc.imap_port is not None
            imap = imaplib.IMAP4("127.0.0.1", dc.imap_port)
            imap.login("alice", PASSWORD)
            typ, count = imap.select("INBOX", readonly=True)
            assert typ == "OK" and int(count[0] or 0) == len(names)
            wire = {name: _crlf((CORPUS / name).read_bytes()) for name in names}
            answers: dict[str, dict[str, bytes]] = {}
            for seq in range(1, len(names) + 1):
                full = _raw_fetch(imap, seq, "BODY.PEEK[]")
                matches = [n for n, w in wire.items() if full.endswith(b"}\r\n" + w + b")")]
                assert len(matches) == 1, full[:200]
                items = {"seq": str(seq).encode()}
                for item in ATTS + [s for s, _ in SECTIONS]:
                    items[item] = _raw_fetch(imap, seq, item)
                answers[matches[0]] = items
            imap.logout()
        yield answers
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _ours(name: str, seq: int, item: FetchAtt | BodySection) -> bytes:
    msg = parse((CORPUS / name).read_bytes())
    pair = fetch_item(msg, item)
    assert pair is not None
    wire = serializer.fetch(seq, [pair])
    # imaplib hands FETCH data over as "seq (items)": drop "* ", " FETCH" and the CRLF
    prefix = b"* %d FETCH " % seq
    assert wire.startswith(prefix) and wire.endswith(b"\r\n")
    return b"%d " % seq + wire[len(prefix) : -2]


CORPUS_NAMES = sorted(p.name for p in CORPUS.glob("*.eml"))


@pytest.mark.parametrize("name", CORPUS_NAMES)
@pytest.mark.parametrize("att", ATTS)
def test_structure_items_match_dovecot(
    dovecot_answers: dict[str, dict[str, bytes]], name: str, att: str
) -> None:
    theirs = dovecot_answers[name]
    seq = int(theirs["seq"])
    assert _ours(name, seq, FetchAtt(att)) == theirs[att]  # type: ignore[arg-type]


@pytest.mark.parametrize("name", CORPUS_NAMES)
@pytest.mark.parametrize(("spec", "section"), SECTIONS, ids=[s for s, _ in SECTIONS])
def test_sections_match_dovecot(
    dovecot_answers: dict[str, dict[str, bytes]], name: str, spec: str, section: BodySection
) -> None:
    theirs = dovecot_answers[name]
    seq = int(theirs["seq"])
    assert _ours(name, seq, section) == theirs[spec]
