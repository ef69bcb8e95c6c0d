"""Dovecot 2.3 and our IMAP server agree about one account.

One account is built through our IMAP listener (STARTTLS, test CA) with
imaplib: nested and non-ASCII folders (modified UTF-7, RFC 3501 5.1.3),
subscriptions, messages APPENDed with system flags and keywords, STORE,
COPY, MOVE and EXPUNGE (so UIDs have holes and UIDNEXT runs ahead).  A
*snapshot* of an IMAP server is what imaplib sees: LIST, LSUB, and per
mailbox EXAMINE's UIDVALIDITY/UIDNEXT/EXISTS, STATUS, and
``UID FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[])``.

* ``test_dovecot_imapc_copies_our_account``: Dovecot's own IMAP client
  (``doveadm backup -R -u alice imapc:``, imapc over STARTTLS verifying our
  certificate against the test CA) copies the account out of our running
  server into a private Dovecot's empty Maildir.  Every folder, subscription,
  message (bytes), flag and keyword must arrive; dsync keeps the source's
  UIDs and UIDVALIDITY, so those must match too.
* ``test_dovecot_on_our_data_dir_shows_what_we_showed``: our server stops; a
  private Dovecot starts on our data directory and ``users.passwd`` as they
  are.  Its snapshot must equal ours (UIDs, UIDVALIDITY, UIDNEXT included),
  and ``doveadm mailbox status`` must give the same numbers.
"""

from __future__ import annotations

import base64
import hashlib
import imaplib
import os
import re
import shutil
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e_util import (
    IMAP_LISTENER,
    CertFiles,
    ServeProcess,
    imap_login,
    imap_ok,
    make_certs,
    make_message,
)
from tests.interop.peers import DovecotInstance, dovecot_missing, make_peer_dir

pytestmark = pytest.mark.interop

USER, PASSWORD = "alice", "alice-Dovecot-Agrees-Pw!3"
NONASCII = "Projekte/Grüße & Co"  # modified UTF-7 on the wire and on disk
FOLDERS = ("Work", "Work/Reports", "Lists", NONASCII)
# (folder, subject, flags at APPEND)
SEED: tuple[tuple[str, str, str], ...] = (
    ("INBOX", "plain new", ""),
    ("INBOX", "seen", "\\Seen"),
    ("INBOX", "all system flags", "\\Seen \\Answered \\Flagged \\Draft"),
    ("INBOX", "keywords", "\\Seen $Forwarded $Label1 Project-X"),
    ("INBOX", "to be expunged", "\\Seen"),
    ("INBOX", "to be moved", "$Label2"),
    ("INBOX", "deleted but kept", "\\Deleted"),
    ("Work", "work a", "\\Flagged"),
    ("Work", "work b", "$Label1"),
    ("Work/Reports", "report", "\\Seen NonJunk"),
    ("Lists", "list mail", ""),
    (NONASCII, "umlaut folder", "\\Answered"),
)
CHILD_ATTRS = {"\\haschildren", "\\hasnochildren", "\\noselect", "\\nonexistent"}
LIST_RE = re.compile(rb'^\(([^)]*)\) (?:"(.)"|NIL) (.*)$')
STATUS_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN")


# --- modified UTF-7 (RFC 3501 5.1.3), small and local so the test does not trust ours ---------


def mutf7_encode(name: str) -> str:
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def quoted(name: str) -> str:
    return '"' + mutf7_encode(name).replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- snapshots -------------------------------------------------------------------------------


@dataclass
class MailboxView:
    uidvalidity: int
    uidnext: int
    exists: int
    status: dict[str, int]
    # uid -> (flags without \Recent, RFC822.SIZE, sha256 of BODY[])
    messages: dict[int, tuple[frozenset[str], int, str]] = field(default_factory=dict)


@dataclass
class Snapshot:
    listed: dict[str, frozenset[str]]  # mailbox (as on the wire) -> child attributes
    subscribed: set[str]
    mailboxes: dict[str, MailboxView]


def parse_list(lines: list[bytes | tuple[bytes, bytes]]) -> dict[str, frozenset[str]]:
    result: dict[str, frozenset[str]] = {}
    for line in lines:
        if line is None:
            continue
        if isinstance(line, tuple):  # a literal mailbox name
            head, literal = line
            match = LIST_RE.match(head.rsplit(b" {", 1)[0] + b" x")
            assert match is not None, line
            name = literal.decode()
        else:
            match = LIST_RE.match(line)
            assert match is not None, line
            name = match.group(3).decode()
            if name.startswith('"'):
                name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        attrs = frozenset(a.lower() for a in match.group(1).decode().split())
        result[name] = attrs & CHILD_ATTRS
    return result


def fetch_all(imap: imaplib.IMAP4, what: str) -> dict[int, tuple[frozenset[str], int, str]]:
    data = imap_ok(imap.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])"), what)
    messages: dict[int, tuple[frozenset[str], int, str]] = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        head, body = item
        uid = re.search(rb"UID (\d+)", head)
        flags = re.search(rb"FLAGS \(([^)]*)\)", head)
        size = re.search(rb"RFC822\.SIZE (\d+)", head)
        assert uid and flags and size, head
        names = frozenset(flags.group(1).decode().split()) - {"\\Recent"}
        assert int(size.group(1)) == len(body), (what, head)
        messages[int(uid.group(1))] = (names, len(body), hashlib.sha256(body).hexdigest())
    return messages


def snapshot(port: int, ctx: ssl.SSLContext | None) -> Snapshot:
    imap = imap_login(port, USER, PASSWORD, ctx)
    try:
        listed = parse_list(imap_ok(imap.list('""', "*"), "LIST"))
        subscribed = set(parse_list(imap_ok(imap.lsub('""', "*"), "LSUB")))
        views: dict[str, MailboxView] = {}
        for name in sorted(listed):
            if "\\noselect" in listed[name]:
                continue
            wire = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
            st = imap_ok(imap.status(wire, f"({' '.join(STATUS_ITEMS)})"), f"STATUS {name}")
            inner = st[0].decode().rsplit("(", 1)[1].rstrip(")").split()
            status = {k: int(v) for k, v in zip(inner[::2], inner[1::2], strict=True)}
            typ, data = imap.select(wire, readonly=True)
            assert typ == "OK", (name, data)
            exists = int(data[0] or b"0")
            untagged: dict[str, list[bytes]] = imap.untagged_responses  # type: ignore[assignment]
            validity = int(untagged.get("UIDVALIDITY", [b"0"])[-1])
            uidnext = int(untagged.get("UIDNEXT", [b"0"])[-1])
            view = MailboxView(validity, uidnext, exists, status)
            if exists:
                view.messages = fetch_all(imap, f"FETCH {name}")
            assert len(view.messages) == exists, (name, exists, sorted(view.messages))
            views[name] = view
            imap_ok(imap.close(), "CLOSE")
    finally:
        imap.logout()
    return Snapshot(listed, subscribed, views)


# --- building the account on our server ---------------------------------------------------------


def body_of(subject: str) -> bytes:
    text = "".join(f"{subject} line {i:02d} äöü\r\n" for i in range(30)).encode()
    return make_message(
        subject,
        text,
        message_id=f"<{subject.replace(' ', '-')}@agree.test>",
        extra_headers=["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"],
    )


def build_account(port: int, ctx: ssl.SSLContext) -> None:
    imap = imap_login(port, USER, PASSWORD, ctx)
    try:
        for folder in FOLDERS:
            imap_ok(imap.create(quoted(folder)), f"CREATE {folder}")
        for folder in ("Work", "Work/Reports", NONASCII):
            imap_ok(imap.subscribe(quoted(folder)), f"SUBSCRIBE {folder}")
        for folder, subject, flags in SEED:
            imap_ok(imap.append(quoted(folder), f"({flags})", None, body_of(subject)), subject)
        imap_ok(imap.select("INBOX"), "SELECT INBOX")

        def uid_of(subject: str) -> str:
            found = imap_ok(imap.uid("SEARCH", "HEADER", "Subject", f'"{subject}"'))[0].split()
            assert len(found) == 1, (subject, found)
            return str(found[0].decode())

        imap_ok(imap.uid("STORE", uid_of("plain new"), "+FLAGS", "($Important)"), "STORE")
        imap_ok(imap.uid("STORE", uid_of("seen"), "-FLAGS", "(\\Seen)"), "STORE -FLAGS")
        imap_ok(imap.uid("COPY", uid_of("keywords"), quoted("Work")), "COPY")
        imap_ok(imap.uid("MOVE", uid_of("to be moved"), quoted("Lists")), "MOVE")
        victim = uid_of("to be expunged")
        imap_ok(imap.uid("STORE", victim, "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
        # UID EXPUNGE (UIDPLUS) leaves "deleted but kept" alone
        imap_ok(imap.uid("EXPUNGE", victim), "UID EXPUNGE")
        imap_ok(imap.unselect(), "UNSELECT")  # not CLOSE: that would expunge the rest
    finally:
        imap.logout()


def check_account(snap: Snapshot) -> None:
    """What build_account must have produced (so a broken server fails here first)."""
    wire_nonascii = mutf7_encode(NONASCII)
    for name in ("INBOX", "Work", "Work/Reports", "Lists", wire_nonascii):
        assert name in snap.mailboxes, (name, sorted(snap.listed))
    assert {"Work", "Work/Reports", wire_nonascii} <= snap.subscribed, snap.subscribed
    inbox = snap.mailboxes["INBOX"]
    assert inbox.exists == 5, inbox
    assert inbox.uidnext == 8, inbox  # 7 appended, 2 gone (expunged, moved)
    all_flags = sorted(f for m in inbox.messages.values() for f in m[0])
    for flag in ("$Forwarded", "$Label1", "Project-X", "$Important", "\\Deleted", "\\Draft"):
        assert flag in all_flags, (flag, all_flags)
    assert len(snap.mailboxes["Work"].messages) == 3
    assert len(snap.mailboxes["Lists"].messages) == 2


def assert_same(ours: Snapshot, theirs: Snapshot, *, what: str, copy: bool = False) -> None:
    """``theirs`` shows what ``ours`` shows.  ``copy``: dsync creates the parents of
    nested mailboxes as real (empty) mailboxes where IMAP CREATE, Dovecot's as ours,
    leaves a \\Noselect placeholder: ignore that difference."""
    assert sorted(theirs.listed) == sorted(ours.listed), what
    if copy:
        placeholders = {n for n, attrs in ours.listed.items() if "\\noselect" in attrs}
        for name in placeholders:
            view = theirs.mailboxes.get(name)
            assert view is None or view.exists == 0, f"{what}: {name} was a placeholder"
        strip = {"\\noselect"}
        assert {n: a - strip for n, a in theirs.listed.items()} == {
            n: a - strip for n, a in ours.listed.items()
        }, f"{what}: LIST attributes"
    else:
        assert theirs.listed == ours.listed, f"{what}: LIST attributes"
    assert theirs.subscribed == ours.subscribed, f"{what}: LSUB"
    for name, mine in ours.mailboxes.items():
        other = theirs.mailboxes[name]
        assert other.messages == mine.messages, f"{what}: {name} UID -> (flags, size, sha256)"
        assert (other.uidvalidity, other.uidnext, other.exists) == (
            mine.uidvalidity,
            mine.uidnext,
            mine.exists,
        ), f"{what}: {name} UIDVALIDITY/UIDNEXT/EXISTS"
        assert other.status == mine.status, f"{what}: {name} STATUS"


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def work() -> Iterator[Path]:
    reason = dovecot_missing()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and Dovecot is required: {reason}")
        pytest.skip(reason)
    path = make_peer_dir("mailgw-imap-agree-")  # traversable by Dovecot's mail user
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def certs(work: Path) -> CertFiles:
    return make_certs(work / "certs")


@pytest.fixture
def ours(work: Path, certs: CertFiles) -> Iterator[tuple[ServeProcess, Snapshot]]:
    """Our server with the account built and checked; its snapshot."""
    with ServeProcess(
        work / "serve", certs=certs, listeners=(IMAP_LISTENER,), data_dir=work / "data"
    ) as serve:
        serve.add_user(USER, PASSWORD)
        build_account(serve.port("imap"), certs.client_context())
        snap = snapshot(serve.port("imap"), certs.client_context())
        check_account(snap)
        yield serve, snap


# --- tests -----------------------------------------------------------------------------------


def test_dovecot_imapc_copies_our_account(
    work: Path,
    certs: CertFiles,
    ours: tuple[ServeProcess, Snapshot],
    dovecot_factory: Callable[..., DovecotInstance],
) -> None:
    serve, mine = ours
    dest = work / "dest"
    dest.mkdir()
    passwd = dest / "users.passwd"
    passwd.write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    passwd.chmod(0o600)
    imapc = (
        f"imapc_host = localhost\n"
        f"imapc_port = {serve.port('imap')}\n"
        f"imapc_user = {USER}\n"
        f"imapc_password = {PASSWORD}\n"
        f"imapc_ssl = starttls\n"
        f"imapc_ssl_verify = yes\n"
        f"ssl_client_ca_file = {certs.ca_cert}\n"
        f"imapc_features = rfc822.size fetch-headers\n"
        f"mail_prefetch_count = 20\n"
    )
    dc = dovecot_factory(dest, passwd, protocols=("imap",), extra_conf=imapc)
    dc.doveadm("backup", "-R", "-u", USER, "imapc:")

    theirs = snapshot(dc.imap_port or 0, None)
    # the copy is Dovecot's, but it must hold everything ours held
    assert_same(mine, theirs, what="doveadm backup -R imapc: from our server", copy=True)
    status = {
        mutf7_encode(k): v
        for k, v in dc.mailbox_status(USER, "*", "messages uidvalidity uidnext").items()
    }
    for name, view in mine.mailboxes.items():
        assert status[name] == {
            "messages": view.exists,
            "uidvalidity": view.uidvalidity,
            "uidnext": view.uidnext,
        }, name


def test_dovecot_on_our_data_dir_shows_what_we_showed(
    work: Path,
    ours: tuple[ServeProcess, Snapshot],
    dovecot_factory: Callable[..., DovecotInstance],
) -> None:
    serve, mine = ours
    assert serve.stop() == 0
    data = work / "data"
    dc = dovecot_factory(data, data / "users.passwd", protocols=("imap",))
    theirs = snapshot(dc.imap_port or 0, None)
    assert_same(mine, theirs, what="Dovecot on our data directory")
    status = {
        mutf7_encode(k): v
        for k, v in dc.mailbox_status(USER, "*", "messages uidvalidity uidnext unseen").items()
    }
    assert set(status) == set(mine.mailboxes)
    for name, view in mine.mailboxes.items():
        assert status[name] == {
            "messages": view.status["MESSAGES"],
            "uidvalidity": view.status["UIDVALIDITY"],
            "uidnext": view.status["UIDNEXT"],
            "unseen": view.status["UNSEEN"],
        }, name
