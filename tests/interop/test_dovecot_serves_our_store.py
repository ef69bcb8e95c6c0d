"""A real Dovecot 2.3 serves what ``mailgw serve`` stored: same bytes, same UIDLs.

Mail goes in through our SMTP listener (8-bit body, lines starting with ".",
a line that is only "."), comes out through our POP3 (UIDL + RETR).  Then
serve stops and a private Dovecot starts on the same data directory and the
same ``users.passwd`` (our ``{ARGON2ID}`` hashes, verified by Dovecot's
libsodium).  Its POP3 must list the same number of messages with identical
bytes and the SAME UIDLs: both use Dovecot's default ``pop3_uidl_format``
``%08Xu%08Xv`` over the one ``dovecot-uidlist``.
"""

from __future__ import annotations

import poplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_util import (
    DOMAIN,
    LOOPBACK,
    CertFiles,
    Listener,
    ServeProcess,
    make_certs,
    make_message,
    pop3_fetch_all,
    pop3_login,
    smtp_send,
    trace_of,
)
from tests.interop.peers import DovecotInstance, dovecot_missing, peer_workdir

pytestmark = pytest.mark.interop

USER, PASSWORD = "alice", "alice-Dovecot-Pw!4"

BODIES = [
    b"plain ascii body\r\n",
    "8-bit: café, Grüße, 日本語\r\n".encode(),
    b".leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n",
    b"".join(b"line %03d %s\r\n" % (i, b"z" * 70) for i in range(300)),  # ~25 KiB
]


@pytest.fixture
def work() -> Iterator[Path]:
    if (reason := dovecot_missing()) is not None:
        pytest.skip(reason)  # a failure under CI=true (tests/conftest.py)
    with peer_workdir("mailgw-e2e-dovecot-") as path:  # traversable by Dovecot's mail user
        yield path


@pytest.fixture
def certs(work: Path) -> CertFiles:
    return make_certs(work / "certs")


def test_dovecot_serves_our_store_with_same_uidls(work: Path, certs: CertFiles) -> None:
    listeners = (Listener("smtp", "smtp"), Listener("pop3", "pop3", "starttls"))
    data = work / "data"
    sent: list[bytes] = []
    with ServeProcess(work / "serve", certs=certs, listeners=listeners, data_dir=data) as serve:
        serve.add_user(USER, PASSWORD)
        for i, body in enumerate(BODIES):
            msg = make_message(
                f"to dovecot {i}",
                body,
                to=f"{USER}@{DOMAIN}",
                message_id=f"<dovecot-{i}@e2e.test>",
                extra_headers=["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
                + (["Content-Transfer-Encoding: 8bit"] if i == 1 else []),
            )
            smtp_send(
                serve.port("smtp"), msg, rcpts=[f"{USER}@{DOMAIN}"], mail_options=["BODY=8BITMIME"]
            )
            sent.append(msg)
        pop = pop3_login(serve.port("pop3"), USER, PASSWORD, certs.client_context())
        try:
            ours = pop3_fetch_all(pop)
        finally:
            pop.quit()  # nothing marked deleted: UPDATE removes nothing
        assert serve.stop() == 0, serve.log()
        users_file = data / "users.passwd"
        assert "{ARGON2ID}" in users_file.read_text()

    assert len(ours) == len(BODIES)
    for msg in sent:
        [stored] = [m for m in ours.values() if m.endswith(msg)]
        trace_of(stored, msg)

    # the same data directory and users file; DovecotInstance chowns them to its mail user
    with DovecotInstance(data, users_file, protocols=("pop3",)) as dc:
        try:
            assert dc.pop3_port is not None
            pop = poplib.POP3(LOOPBACK, dc.pop3_port, timeout=30)
            try:
                pop.user(USER)
                pop.pass_(PASSWORD)  # Dovecot verifies our {ARGON2ID} hash
                theirs = pop3_fetch_all(pop)
            finally:
                pop.quit()
            wrong = poplib.POP3(LOOPBACK, dc.pop3_port, timeout=30)
            try:
                wrong.user(USER)
                with pytest.raises(poplib.error_proto):
                    wrong.pass_("not-" + PASSWORD)
            finally:
                wrong.close()
        except BaseException:
            print(dc.log_text())
            raise

    assert len(theirs) == len(ours)
    assert sorted(theirs.values()) == sorted(ours.values())  # identical bytes
    # the same UIDLs for the same messages (Dovecot's %X expands to lower-case hex)
    by_uidl_theirs = sorted(theirs.items())
    by_uidl_ours = sorted(ours.items())
    assert [u for u, _ in by_uidl_ours] == [u for u, _ in by_uidl_theirs], (
        "POP3 UIDLs differ between mailgw and Dovecot"
    )
    assert by_uidl_ours == by_uidl_theirs
