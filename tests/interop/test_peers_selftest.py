"""Self-tests of the peer launchers (tests/interop/peers.py) and of the CI skip rule.

* Dovecot serves a Maildir written by hand (one message, LF or CRLF on disk)
  through POP3 (poplib: UIDL ``%08Xu%08Xv``, lower-case hex, RETR bytes) and IMAP
  (imaplib: FETCH BODY[]), with ``{PLAIN}`` and mailgw ``{ARGON2ID}`` hashes;
  with certificates it also serves POP3S/IMAPS; two instances run at once.
* Postfix accepts one message over SMTP (smtplib) and delivers it to the
  user's Maildir; unknown users are refused at RCPT; sink mode takes anything.
* ``tests/conftest.py`` turns a skipped interop test into a failure under CI=true.
"""

from __future__ import annotations

import imaplib
import os
import poplib
import shutil
import smtplib
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from tests.interop.peers import LOOPBACK, DovecotInstance, PostfixInstance

USER, PASSWORD = "alice", "peer-Selftest-pw1"
DOMAIN = "example.org"
MESSAGE_LINES = [
    b"From: Bob <bob@remote.test>",
    b"To: Alice <alice@example.org>",
    b"Subject: peer self-test",
    b"Message-ID: <selftest-1@remote.test>",
    b"",
    b"Hello Alice,",
    b".a line starting with a dot",
    b"bye",
]
CRLF_MESSAGE = b"\r\n".join(MESSAGE_LINES) + b"\r\n"

DovecotFactory = Callable[..., DovecotInstance]
PostfixFactory = Callable[..., PostfixInstance]


def write_maildir(data: Path, user: str, raw: bytes) -> Path:
    """A mailgw-layout home with one message in ``Maildir/new``; the message path."""
    maildir = data / "mail" / user / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    path = maildir / "new" / f"1700000000.M1P1.selftest,S={len(raw)}"
    path.write_bytes(raw)
    return path


def write_passwd(data: Path, line: str) -> Path:
    passwd = data / "users.passwd"
    passwd.write_text(line + "\n")
    passwd.chmod(0o600)
    return passwd


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_dovecot_serves_hand_written_maildir(
    peer_dir: Path, dovecot_factory: DovecotFactory, eol: bytes
) -> None:
    data = peer_dir / "data"
    msg_path = write_maildir(data, USER, eol.join(MESSAGE_LINES) + eol)
    passwd = write_passwd(data, f"{USER}:{{PLAIN}}{PASSWORD}::::::")
    dc = dovecot_factory(data, passwd)
    assert dc.imap_port and dc.pop3_port and dc.imaps_port is None and dc.pop3s_port is None

    status = dc.mailbox_status(USER, "INBOX")
    assert status["INBOX"]["messages"] == 1
    uidvalidity = status["INBOX"]["uidvalidity"]

    pop = poplib.POP3(LOOPBACK, dc.pop3_port, timeout=30)
    try:
        pop.user(f"{USER}@{DOMAIN}")  # username_format=%n: the domain part is dropped
        pop.pass_(PASSWORD)
        assert pop.stat()[0] == 1
        # pop3_uidl_format %08Xu%08Xv: Dovecot 2.3's %X expands to LOWER-case hex
        assert pop.uidl()[1] == [b"1 " + f"{1:08x}{uidvalidity:08x}".encode()]
        _, lines, _ = pop.retr(1)
        assert b"\r\n".join(lines) + b"\r\n" == CRLF_MESSAGE
    finally:
        pop.quit()

    imap = imaplib.IMAP4(LOOPBACK, dc.imap_port, timeout=30)
    try:
        imap.login(USER, PASSWORD)
        typ, _ = imap.select("INBOX")
        assert typ == "OK"
        typ, fetched = imap.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK"
        first = fetched[0]
        assert isinstance(first, tuple)
        assert first[1] == CRLF_MESSAGE
    finally:
        imap.logout()

    # the files now belong to Dovecot's mail user; root (the tests, mailgw) still writes
    assert any(msg_path.parent.parent.joinpath(sub).iterdir() for sub in ("cur", "new"))
    if os.geteuid() == 0:
        assert (data / "mail" / USER / "Maildir").stat().st_uid != 0
        (data / "mail" / USER / "Maildir" / "tmp" / "root-can-write").write_bytes(b"x")


def test_dovecot_verifies_mailgw_argon2id_hash(
    peer_dir: Path, dovecot_factory: DovecotFactory
) -> None:
    from mailgw.auth.hashing import hash_password

    data = peer_dir / "data"
    write_maildir(data, USER, CRLF_MESSAGE)
    passwd = write_passwd(data, f"{USER}:{hash_password(PASSWORD)}::::::")
    dc = dovecot_factory(data, passwd, protocols=("pop3",))
    assert dc.imap_port is None and dc.pop3_port is not None
    pop = poplib.POP3(LOOPBACK, dc.pop3_port, timeout=30)
    try:
        pop.user(USER)
        pop.pass_(PASSWORD)
        assert pop.stat()[0] == 1
    finally:
        pop.quit()
    bad = poplib.POP3(LOOPBACK, dc.pop3_port, timeout=30)
    try:
        bad.user(USER)
        with pytest.raises(poplib.error_proto):
            bad.pass_("not-" + PASSWORD)
    finally:
        bad.close()


def test_dovecot_tls_listeners_and_two_instances(
    peer_dir: Path, dovecot_factory: DovecotFactory
) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", LOOPBACK)
    cert, key = peer_dir / "cert.pem", peer_dir / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    first = peer_dir / "one"
    second = peer_dir / "two"
    write_maildir(first, USER, CRLF_MESSAGE)
    write_maildir(second, USER, CRLF_MESSAGE + CRLF_MESSAGE)
    dc1 = dovecot_factory(
        first, write_passwd(first, f"{USER}:{{PLAIN}}{PASSWORD}::::::"), ssl_cert=cert, ssl_key=key
    )
    dc2 = dovecot_factory(second, write_passwd(second, f"{USER}:{{PLAIN}}{PASSWORD}::::::"))
    assert dc1.pop3s_port is not None and dc1.imaps_port is not None
    assert dc1.pop3_port is not None and dc2.pop3_port is not None
    assert len({dc1.pop3_port, dc1.imap_port, dc2.pop3_port, dc2.imap_port}) == 4

    pops = poplib.POP3_SSL(LOOPBACK, dc1.pop3s_port, context=client_ctx, timeout=30)
    try:
        pops.user(USER)
        pops.pass_(PASSWORD)
        assert pops.stat() == (1, len(CRLF_MESSAGE))
    finally:
        pops.quit()
    imaps = imaplib.IMAP4_SSL(LOOPBACK, dc1.imaps_port, ssl_context=client_ctx, timeout=30)
    try:
        imaps.login(USER, PASSWORD)
        assert imaps.select("INBOX") == ("OK", [b"1"])
    finally:
        imaps.logout()
    plain = poplib.POP3(LOOPBACK, dc1.pop3_port, timeout=30)
    try:
        assert "STLS" in plain.capa()
    finally:
        plain.quit()

    pop2 = poplib.POP3(LOOPBACK, dc2.pop3_port, timeout=30)
    try:
        pop2.user(USER)
        pop2.pass_(PASSWORD)
        assert pop2.stat() == (1, 2 * len(CRLF_MESSAGE))
    finally:
        pop2.quit()

    dc2.stop()
    assert dc2.master_pid() is None or not dc2.running
    with pytest.raises(OSError):
        poplib.POP3(LOOPBACK, dc2.pop3_port, timeout=5)


def test_postfix_delivers_to_virtual_maildir(postfix: PostfixInstance) -> None:
    body = b"Subject: postfix self-test\r\nMessage-ID: <pf-1@remote.test>\r\n\r\nhi alice\r\n"
    with smtplib.SMTP(LOOPBACK, postfix.port, timeout=30) as smtp:
        code, _banner = smtp.ehlo("client.test")
        assert code == 250
        refused = smtp.sendmail("bob@remote.test", ["alice@peer.test"], body)
        assert refused == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("bob@remote.test", ["nobody@peer.test"], body)
    files = postfix.wait_for_messages(1, "alice")
    assert len(files) == 1
    delivered = files[0].read_bytes()
    assert b"Message-ID: <pf-1@remote.test>" in delivered.replace(b"Message-Id", b"Message-ID")
    assert b"hi alice" in delivered
    assert files[0].parent.parent == postfix.maildir("alice")
    assert postfix.messages("bob") == []
    assert "Mail queue is empty" in postfix.postqueue()


def test_postfix_sink_accepts_any_domain(postfix_sink: PostfixInstance) -> None:
    rcpts = ["someone@elsewhere.example", "other@peer.test"]
    with smtplib.SMTP(LOOPBACK, postfix_sink.port, timeout=30) as smtp:
        assert smtp.sendmail("a@remote.test", rcpts, b"Subject: sink\r\n\r\nx\r\n") == {}
    files = postfix_sink.wait_for_messages(2)
    assert len(files) == 2
    assert all(b"Subject: sink" in f.read_bytes() for f in files)


def test_postfix_stop_closes_port(postfix_factory: PostfixFactory) -> None:
    pf = postfix_factory(users=("carol",), domain="peer.test")
    pid = pf.master_pid()
    assert pid is not None
    pf.stop()
    assert not pf.running
    with pytest.raises(OSError):
        smtplib.SMTP(LOOPBACK, pf.port, timeout=5)


# --- the CI rule of tests/conftest.py ------------------------------------------------------

_PROBE_TESTS = """
import pytest

def test_skipped_interop():
    pytest.skip("no such peer here")

@pytest.mark.xfail(reason="expected")
def test_xfail_interop():
    assert False

def test_passes():
    pass
"""

_PROBE_OUTSIDE = """
import pytest

@pytest.mark.interop
def test_marked_interop_outside():
    pytest.skip("marked peer missing")

def test_ordinary_skip():
    pytest.skip("ordinary skip stays a skip")
"""

_PROBE_MODULE_SKIP = """
import pytest
pytest.skip("whole module has no peer", allow_module_level=True)
"""


def _run_probe(root: Path, ci: bool, target: str = "tests") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q", target],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ci_turns_interop_skips_into_failures(tmp_path: Path) -> None:
    root = tmp_path / "probe"
    (root / "tests" / "interop").mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\nmarkers =\n    interop: real peer\n")
    shutil.copy(Path(__file__).resolve().parent.parent / "conftest.py", root / "tests")
    (root / "tests" / "interop" / "test_probe.py").write_text(_PROBE_TESTS)
    (root / "tests" / "interop" / "test_module_skip.py").write_text(_PROBE_MODULE_SKIP)
    (root / "tests" / "test_outside.py").write_text(_PROBE_OUTSIDE)

    local = _run_probe(root, ci=False)
    assert local.returncode == 0, local.stdout + local.stderr
    assert "1 passed, 4 skipped, 1 xfailed" in local.stdout, local.stdout

    ci = _run_probe(root, ci=True)
    out = ci.stdout
    assert ci.returncode == 1, out + ci.stderr
    assert "no such peer here" in out and "marked peer missing" in out, out
    assert "whole module has no peer" in out, out
    assert "CI=true" in out
    assert "FAILED tests/interop/test_probe.py::test_skipped_interop" in out, out
    assert "FAILED tests/test_outside.py::test_marked_interop_outside" in out, out
    assert "FAILED (skipped in CI) tests/interop/test_module_skip.py" in out, out
    # an ordinary skip outside interop stays a skip; xfail stays xfail
    assert "SKIPPED" in out and "ordinary skip stays a skip" in out, out
    assert "1 xfailed" in out, out

    only_module = _run_probe(root, ci=True, target="tests/interop/test_module_skip.py")
    assert only_module.returncode == 1, only_module.stdout + only_module.stderr
    # without CI it is only a skip (pytest: 5, nothing ran)
    assert _run_probe(root, ci=False, target="tests/interop/test_module_skip.py").returncode == 5
