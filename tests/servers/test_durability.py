"""``250`` after DATA means on disk: SIGKILL the server mid-stream, restart, count.

Four client threads send numbered messages (a unique Message-ID each, several
KiB) through smtplib and record which ones got ``250``.  Once enough have been
acknowledged -- while the threads are still sending -- the server is killed
with SIGKILL and started again on the same data directory.  Then:

* every acknowledged message is in the mailbox, complete: its stored bytes
  are the trace headers followed by exactly the bytes sent;
* nothing in ``new/`` or ``cur/`` is partial or unknown (a message sent but
  not acknowledged may or may not be there, but only whole);
* leftovers in ``tmp/`` are allowed, but POP3 does not show them: POP3 lists
  exactly the files of ``new/`` and ``cur/``, with the same bytes as the store.
"""

from __future__ import annotations

import re
import signal
import smtplib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailgw.store import Store
from tests.e2e_util import (
    DOMAIN,
    LOOPBACK,
    CertFiles,
    Listener,
    ServeProcess,
    maildir_files,
    make_certs,
    make_message,
    pop3_fetch_all,
    pop3_login,
    trace_of,
)

pytestmark = pytest.mark.slow

USER, PASSWORD = "alice", "alice-durable-pw"
THREADS = 4
KILL_AFTER = 60  # acknowledged messages before SIGKILL
PER_THREAD_MAX = 400  # a bound, never reached when the kill works
MSGID_RE = re.compile(rb"^Message-ID: <([^>]+)>\r$", re.MULTILINE)


def message_for(thread: int, n: int) -> tuple[str, bytes]:
    msgid = f"t{thread}-n{n:05d}@durability.test"
    filler = b"".join(
        b"thread %d message %05d line %03d: the quick brown fox jumps over the lazy dog\r\n"
        % (thread, n, i)
        for i in range(60)
    )  # about 5 KiB
    return msgid, make_message(
        f"durability {thread}/{n}", filler, to=f"{USER}@{DOMAIN}", message_id=f"<{msgid}>"
    )


class Sender(threading.Thread):
    """Sends messages on one connection (reconnecting after errors) until stopped."""

    def __init__(self, index: int, port: int, acked: list[str], progress: threading.Event):
        super().__init__(name=f"sender-{index}", daemon=True)
        self.index = index
        self.port = port
        self.acked = acked  # shared; list.append is atomic
        self.progress = progress
        self.stop = threading.Event()
        self.attempted: dict[str, bytes] = {}
        self.errors = 0

    def run(self) -> None:
        n = 0
        while not self.stop.is_set() and n < PER_THREAD_MAX:
            try:
                with smtplib.SMTP(LOOPBACK, self.port, "client.test", timeout=30) as smtp:
                    while not self.stop.is_set() and n < PER_THREAD_MAX:
                        msgid, data = message_for(self.index, n)
                        n += 1
                        self.attempted[msgid] = data
                        refused = smtp.sendmail("load@remote.test", [f"{USER}@{DOMAIN}"], data)
                        if refused == {}:  # sendmail raises unless DATA got 250
                            self.acked.append(msgid)
                            self.progress.set()
            except (OSError, smtplib.SMTPException):
                self.errors += 1
                if self.errors > 50:
                    return
                time.sleep(0.01)


@pytest.fixture
def certs(tmp_path: Path) -> CertFiles:
    return make_certs(tmp_path / "certs")


@pytest.fixture
def serve(tmp_path: Path, certs: CertFiles) -> Iterator[ServeProcess]:
    listeners = (Listener("smtp", "smtp"), Listener("pop3", "pop3", "starttls"))
    with ServeProcess(tmp_path / "serve", certs=certs, listeners=listeners) as proc:
        yield proc
        print(proc.all_logs())  # shown by pytest when the test failed


def test_sigkill_loses_no_acknowledged_message(serve: ServeProcess, certs: CertFiles) -> None:
    serve.add_user(USER, PASSWORD)
    acked: list[str] = []
    progress = threading.Event()
    senders = [Sender(i, serve.port("smtp"), acked, progress) for i in range(THREADS)]
    for s in senders:
        s.start()
    deadline = time.monotonic() + 60
    while len(acked) < KILL_AFTER and time.monotonic() < deadline:
        progress.wait(1)
        progress.clear()
        assert any(s.is_alive() for s in senders), serve.log()
    assert len(acked) >= KILL_AFTER, f"only {len(acked)} acknowledged\n{serve.log()}"
    assert all(s.is_alive() for s in senders), "a sender stopped before the kill"

    serve.kill()
    assert serve.returncode == -signal.SIGKILL
    acked_at_kill = set(acked)
    for s in senders:
        s.stop.set()
    serve.start()  # same data directory; clients may still be retrying meanwhile
    for s in senders:
        s.join(60)
        assert not s.is_alive()
    # senders may have delivered more to the new server after the restart: also fine
    attempted: dict[str, bytes] = {}
    for s in senders:
        attempted.update(s.attempted)
    acked_all = set(acked)
    assert acked_at_kill <= acked_all

    # --- the Maildir, file by file ---
    maildir = serve.maildir(USER)
    files = maildir_files(maildir)
    on_disk: dict[str, bytes] = {}
    for path in files:
        data = path.read_bytes()
        ids = MSGID_RE.findall(data)
        assert len(ids) == 1, f"{path.name}: no single Message-ID (partial?)"
        msgid = ids[0].decode()
        assert msgid in attempted, f"{path.name}: unknown message {msgid}"
        assert msgid not in on_disk, f"{msgid} stored twice"
        trace_of(data, attempted[msgid])  # complete: ends with exactly the bytes sent
        m = re.search(r",S=(\d+)", path.name)
        if m:
            assert int(m.group(1)) == len(data), f"{path.name}: S= does not match"
        on_disk[msgid] = data
    missing = acked_all - on_disk.keys()
    assert not missing, f"acknowledged but lost: {sorted(missing)}"

    # --- through mailgw.store ---
    folder = Store(serve.data / "mail").account(USER).folder("INBOX")
    infos = folder.messages()
    assert len(infos) == len(files)
    assert sorted(folder.read(i) for i in infos) == sorted(on_disk.values())

    # --- through POP3 (tmp/ leftovers are not messages) ---
    pop = pop3_login(serve.port("pop3"), USER, PASSWORD, certs.client_context())
    try:
        via_pop = pop3_fetch_all(pop)
    finally:
        pop.quit()
    assert len(via_pop) == len(files)
    assert sorted(via_pop.values()) == sorted(on_disk.values())
    assert sorted(via_pop) == sorted(f"{i.uid:08x}{folder.uidvalidity:08x}" for i in infos)

    assert serve.stop() == 0, serve.log()
    print(
        f"acked at kill {len(acked_at_kill)}, acked {len(acked_all)}, attempted "
        f"{len(attempted)}, stored {len(files)}, tmp leftovers "
        f"{len(list((maildir / 'tmp').iterdir()))}"
    )
