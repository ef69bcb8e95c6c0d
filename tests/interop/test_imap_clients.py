"""Real IMAP sync clients against ``mailgw serve``: isync (mbsync) and offlineimap3.

Both clients talk to our IMAP listener over STARTTLS (the listener refuses
LOGIN/AUTHENTICATE before TLS, so a sync that logs in went through it) and
mirror the account into a local Maildir.  mbsync verifies the server
certificate against the test CA; offlineimap3 (Debian 0.0~git20211018) does
not for STARTTLS: ``IMAPServer.__start_tls`` calls imaplib2's ``starttls()``
without arguments, so ``sslcacertfile``/``ssl_version``/``tls_level`` only
apply to ``ssl = yes`` (see ``offlineimap_config`` for the TLS 1.2 cap).
The round trip checked in each test:

1. mail put on our server with imaplib (APPEND with flags, into INBOX and a
   subfolder) arrives in the local Maildir with the same bytes and flags
   (Maildir info ``:2,`` letters: F flagged, R answered, S seen);
2. flags changed locally (renaming the Maildir file, as a mail reader does) and a
   message written locally reach our server after the next sync (checked with
   imaplib ``UID FETCH 1:* (FLAGS BODY.PEEK[])``);
3. flags changed on our server with imaplib ``UID STORE`` reach the local Maildir
   after the next sync.

Debian packages: ``isync`` (``/usr/bin/mbsync``) and ``offlineimap3``
(``/usr/bin/offlineimap``).  A missing client skips (fails under ``CI=true``).
Passwords go into the clients' configuration files (mode 0600), never argv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
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
    require_tool,
)

pytestmark = pytest.mark.interop

USER, PASSWORD = "alice", "alice-Imap-Sync-Pw!7"
MBSYNC = "/usr/bin/mbsync"
OFFLINEIMAP = "/usr/bin/offlineimap"
CLIENT_TIMEOUT = 120.0

# (folder, subject, flags given at APPEND)
SEED: tuple[tuple[str, str, str], ...] = (
    ("INBOX", "first unread", ""),
    ("INBOX", "already seen", "\\Seen"),
    ("INBOX", "flagged and answered", "\\Flagged \\Answered \\Seen"),
    ("Work", "work one", ""),
    ("Work", "work two", "\\Seen"),
    ("Work/Reports", "nested report", "\\Flagged"),
)
# IMAP system flag -> Maildir info letter (Maildir spec, as mbsync/offlineimap/Dovecot use)
LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
FETCH_RE = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)")


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def certs(tmp_path: Path) -> CertFiles:
    return make_certs(tmp_path / "certs")


@pytest.fixture
def serve(tmp_path: Path, certs: CertFiles) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path / "serve", certs=certs, listeners=(IMAP_LISTENER,)) as proc:
        proc.add_user(USER, PASSWORD)
        yield proc


# --- helpers ---------------------------------------------------------------------------------


def body_of(subject: str) -> bytes:
    lines = b"".join(b"%s line %02d\r\n" % (subject.encode(), i) for i in range(20))
    return make_message(subject, lines, message_id=f"<{subject.replace(' ', '-')}@sync.test>")


def seed(serve: ServeProcess, certs: CertFiles) -> dict[str, bytes]:
    """APPEND the SEED messages; subject -> message bytes."""
    sent: dict[str, bytes] = {}
    imap = imap_login(serve.port("imap"), USER, PASSWORD, certs.client_context())
    try:
        for folder in ("Work", "Work/Reports"):
            imap_ok(imap.create(folder), f"CREATE {folder}")
            imap_ok(imap.subscribe(folder), f"SUBSCRIBE {folder}")
        for folder, subject, flags in SEED:
            msg = body_of(subject)
            imap_ok(imap.append(folder, f"({flags})", None, msg), f"APPEND {subject}")
            sent[subject] = msg
    finally:
        imap.logout()
    return sent


def server_view(serve: ServeProcess, certs: CertFiles, folder: str) -> dict[str, set[str]]:
    """Subject -> flags (without \\Recent) of every message of ``folder`` on our server."""
    imap = imap_login(serve.port("imap"), USER, PASSWORD, certs.client_context())
    try:
        imap_ok(imap.select(f'"{folder}"', readonly=True), f"EXAMINE {folder}")
        data = imap_ok(imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    finally:
        imap.logout()
    view: dict[str, set[str]] = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        head, literal = item
        flags_match = re.search(rb"FLAGS \(([^)]*)\)", head)
        assert flags_match is not None, head
        flags = set(flags_match.group(1).decode().split()) - {"\\Recent"}
        subject = literal.decode().split(":", 1)[1].strip()
        view[subject] = flags
    return view


def server_store(
    serve: ServeProcess, certs: CertFiles, folder: str, subject: str, op: str, flags: str
) -> None:
    """``UID STORE uid op (flags)`` on the message with ``subject`` in ``folder``."""
    imap = imap_login(serve.port("imap"), USER, PASSWORD, certs.client_context())
    try:
        imap_ok(imap.select(f'"{folder}"'), f"SELECT {folder}")
        uids = imap_ok(imap.uid("SEARCH", "HEADER", "Subject", f'"{subject}"'))[0].split()
        assert len(uids) == 1, (subject, uids)
        imap_ok(imap.uid("STORE", uids[0].decode(), op, f"({flags})"), "UID STORE")
    finally:
        imap.logout()


def maildir_messages(maildir: Path) -> dict[str, tuple[Path, str]]:
    """Subject -> (file, Maildir info letters) of every message in new/ and cur/."""
    found: dict[str, tuple[Path, str]] = {}
    for sub in ("new", "cur"):
        for path in sorted((maildir / sub).glob("*")):
            subject = ""
            for line in path.read_bytes().split(b"\n"):
                if line.lower().startswith(b"subject:"):
                    subject = line.split(b":", 1)[1].strip().decode()
                    break
            letters = path.name.rpartition(":2,")[2] if ":2," in path.name else ""
            found[subject] = (path, "".join(sorted(c for c in letters if c.isupper())))
    return found


def canonical(message: bytes) -> bytes:
    """LF line ends, without the ``X-TUID:`` header mbsync adds to what it copies."""
    text = message.replace(b"\r\n", b"\n")
    return re.sub(rb"(?m)^X-TUID: [^\n]*\n", b"", text, count=1)


def letters(flags: str | set[str]) -> str:
    names = flags.split() if isinstance(flags, str) else flags
    return "".join(sorted(LETTERS[f] for f in names if f in LETTERS))


def set_local_flags(path: Path, new_letters: str) -> Path:
    """Rename a Maildir message to carry ``new_letters`` (moving it to cur/), as a reader does."""
    base = path.name.split(":2,")[0]
    target = path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(new_letters))}"
    path.rename(target)
    return target


def write_local_message(maildir: Path, name: str, data: bytes) -> None:
    (maildir / "tmp" / name).write_bytes(data)
    (maildir / "tmp" / name).rename(maildir / "new" / name)


def run_client(args: list[str], what: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        args,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        env=env,
    )
    out = f"{proc.stdout}\n{proc.stderr}"
    assert proc.returncode == 0, f"{what} exited {proc.returncode}:\n{out}"
    return out


def assert_mirrored(
    local: dict[str, Path], serve: ServeProcess, certs: CertFiles, sent: dict[str, bytes]
) -> None:
    """Every SEED message is in its local Maildir with the server's flags and same bytes."""
    for folder in ("INBOX", "Work", "Work/Reports"):
        on_server = server_view(serve, certs, folder)
        here = maildir_messages(local[folder])
        assert set(here) == set(on_server), (folder, sorted(here), sorted(on_server))
        for subject, flags in on_server.items():
            path, got = here[subject]
            assert got == letters(flags), (folder, subject, got, flags)
            if subject in sent:
                assert canonical(path.read_bytes()) == canonical(sent[subject]), subject


def round_trip(
    sync: Callable[[], None],
    local: dict[str, Path],
    serve: ServeProcess,
    certs: CertFiles,
) -> None:
    """Seed, sync, flag locally, sync, flag on the server, sync; assert each step."""
    sent = seed(serve, certs)
    sync()
    assert_mirrored(local, serve, certs, sent)

    # 2. local changes: mark seen + flagged, clear a flag, add a new message
    inbox = maildir_messages(local["INBOX"])
    set_local_flags(inbox["first unread"][0], "FS")
    set_local_flags(inbox["flagged and answered"][0], "RS")  # \Flagged removed
    work = maildir_messages(local["Work"])
    set_local_flags(work["work one"][0], "S")
    new_msg = body_of("written locally")
    write_local_message(local["Work"], "1700000000.local1.client", new_msg)
    sync()
    assert server_view(serve, certs, "INBOX") == {
        "first unread": {"\\Seen", "\\Flagged"},
        "already seen": {"\\Seen"},
        "flagged and answered": {"\\Answered", "\\Seen"},
    }
    assert server_view(serve, certs, "Work") == {
        "work one": {"\\Seen"},
        "work two": {"\\Seen"},
        "written locally": set(),
    }
    imap = imap_login(serve.port("imap"), USER, PASSWORD, certs.client_context())
    try:
        imap_ok(imap.select('"Work"', readonly=True))
        uids = imap_ok(imap.uid("SEARCH", "HEADER", "Subject", '"written locally"'))[0].split()
        assert len(uids) == 1, uids
        data = imap_ok(imap.uid("FETCH", uids[0].decode(), "(BODY.PEEK[])"))
        assert canonical(data[0][1]) == canonical(new_msg)
    finally:
        imap.logout()

    # 3. server changes reach the local Maildir
    server_store(serve, certs, "INBOX", "already seen", "+FLAGS.SILENT", "\\Flagged")
    server_store(serve, certs, "INBOX", "first unread", "-FLAGS.SILENT", "\\Seen")
    server_store(serve, certs, "Work/Reports", "nested report", "+FLAGS", "\\Seen \\Answered")
    sync()
    got_inbox = {s: fl for s, (_p, fl) in maildir_messages(local["INBOX"]).items()}
    assert got_inbox == {"first unread": "F", "already seen": "FS", "flagged and answered": "RS"}
    got_reports = {s: fl for s, (_p, fl) in maildir_messages(local["Work/Reports"]).items()}
    assert got_reports == {"nested report": "FRS"}
    assert_mirrored(local, serve, certs, sent)


# --- mbsync ----------------------------------------------------------------------------------


def mbsync_config(tmp_path: Path, serve: ServeProcess, certs: CertFiles) -> Path:
    mail = tmp_path / "mbsync-mail"
    mail.mkdir()
    conf = tmp_path / "mbsyncrc"
    conf.write_text(
        f"""\
IMAPAccount ours
Host localhost
Port {serve.port("imap")}
User {USER}
Pass "{PASSWORD}"
SSLType STARTTLS
SSLVersions TLSv1.2 TLSv1.3
CertificateFile {certs.ca_cert}
AuthMechs PLAIN LOGIN

IMAPStore ours-remote
Account ours

MaildirStore local
Path {mail}/
Inbox {mail}/INBOX
SubFolders Verbatim

Channel everything
Far :ours-remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
Sync All
"""
    )
    conf.chmod(0o600)
    return conf


def test_mbsync_round_trip_over_starttls(
    tmp_path: Path, serve: ServeProcess, certs: CertFiles
) -> None:
    require_tool(MBSYNC, "isync")
    conf = mbsync_config(tmp_path, serve, certs)
    mail = tmp_path / "mbsync-mail"
    local = {"INBOX": mail / "INBOX", "Work": mail / "Work", "Work/Reports": mail / "Work/Reports"}

    def sync() -> None:
        run_client([MBSYNC, "-c", str(conf), "-a"], "mbsync")

    round_trip(sync, local, serve, certs)


# --- offlineimap3 ----------------------------------------------------------------------------

# Why offlineimap runs with TLS capped at 1.2 (OPENSSL_CONF for its process only):
# imaplib2 (the library under offlineimap3) drives ONE ssl.SSLSocket from two threads:
# a reader thread that poll()s the fd and calls recv(), and a writer thread that calls
# sendall().  CPython releases the GIL around SSL_read/SSL_write, and OpenSSL does not
# allow one SSL object to be used by two threads at once.  With TLS 1.3 the server sends
# its NewSessionTicket records *after* the handshake, so right after STARTTLS the reader
# wakes up and is inside SSL_read (processing a post-handshake message) exactly when the
# writer sends the first command (``CAPABILITY``).  That data race either loses the write
# -- sendall() returns, the writer logs ``> b'XXXX4 CAPABILITY'``, yet the kernel
# counters show the client never sent those bytes (client bytes_sent = 85 plaintext + 517
# ClientHello + 6 CCS + 74 Finished = 682 = server bytes_received) and both sides wait
# forever (the 120 s hang, reader stuck in SSLSocket.read) -- or corrupts memory (the
# SIGSEGV).  It is not the server: it answered everything it received.  With TLS 1.2 the
# session ticket is part of the handshake, so nothing arrives until the reply to
# CAPABILITY and the two threads never overlap there.  offlineimap's own ``ssl_version``
# cannot do this: it is ignored for STARTTLS (module docstring).  ``-1`` and
# ``maxconnections = 1`` do not help either: the two threads are inside imaplib2.
OPENSSL_TLS12_ONLY = """\
openssl_conf = mailgw_test_conf
[mailgw_test_conf]
ssl_conf = mailgw_test_ssl
[mailgw_test_ssl]
system_default = mailgw_test_tls
[mailgw_test_tls]
MaxProtocol = TLSv1.2
"""


def offlineimap_env(tmp_path: Path) -> dict[str, str]:
    """The environment for offlineimap: TLS 1.2 at most (see above)."""
    cnf = tmp_path / "openssl-tls12.cnf"
    cnf.write_text(OPENSSL_TLS12_ONLY)
    return {**os.environ, "OPENSSL_CONF": str(cnf)}


def offlineimap_config(tmp_path: Path, serve: ServeProcess, certs: CertFiles) -> Path:
    mail = tmp_path / "oi-mail"
    meta = tmp_path / "oi-meta"
    mail.mkdir()
    meta.mkdir()
    conf = tmp_path / "offlineimaprc"
    conf.write_text(
        f"""\
[general]
accounts = ours
metadata = {meta}
ui = basic

[Account ours]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {mail}
sep = /

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {serve.port("imap")}
remoteuser = {USER}
remotepass = {PASSWORD}
ssl = no
starttls = yes
sslcacertfile = {certs.ca_cert}
auth_mechanisms = PLAIN, LOGIN
maxconnections = 1
holdconnectionopen = no
"""
    )
    conf.chmod(0o600)
    return conf


def test_offlineimap3_round_trip_over_starttls(
    tmp_path: Path, serve: ServeProcess, certs: CertFiles
) -> None:
    require_tool(OFFLINEIMAP, "offlineimap3")
    conf = offlineimap_config(tmp_path, serve, certs)
    env = offlineimap_env(tmp_path)
    mail = tmp_path / "oi-mail"
    local = {"INBOX": mail / "INBOX", "Work": mail / "Work", "Work/Reports": mail / "Work/Reports"}

    def sync() -> None:
        out = run_client([OFFLINEIMAP, "-c", str(conf), "-o", "-1"], "offlineimap", env)
        assert "ERROR" not in out, out

    round_trip(sync, local, serve, certs)
    shutil.rmtree(mail, ignore_errors=True)
