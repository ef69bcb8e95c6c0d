"""``mailgw migrate`` against real peers: two private Dovecots and ``mailgw serve``.

Each test starts its own Dovecot instances (loopback high ports, IMAP and POP3;
one with ``/`` and one with ``.`` as hierarchy separator), seeds the source
with the corpus of :func:`tests.interop.migrate_util.build_corpus` (nested and
non-ASCII folders, a 5 MiB attachment, 8-bit and encoded headers, no or shared
Message-IDs, identical twins, every system flag and keywords, dates before
2000, a SPECIAL-USE ``\\Sent`` called ``Sent Messages`` on the destination),
runs the CLI as a subprocess and compares both accounts completely: every
folder, the SHA-256 of every message, its flags and its INTERNALDATE
(:func:`~tests.interop.migrate_util.compare_accounts`).

Scenarios: IMAP(/) -> IMAP(.) with re-run (nothing copied), a flag change on
the source (synced) and ``--verify``; IMAP(.) -> IMAP(/); POP3 -> IMAP;
IMAP -> Maildir -> IMAP; mbox (mboxrd, Status/X-Status) -> IMAP; IMAP ->
``mailgw serve``; a source folder deleted and recreated (new UIDVALIDITY, same
content); a destination pre-filled without state; SIGKILL at three points
(the copier frozen by a proxy when N messages have arrived) then a finishing run.
"""

from __future__ import annotations

import email.utils
import hashlib
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e_util import CertFiles, Listener, ServeProcess
from tests.interop.migrate_util import (
    INBOX,
    SENT,
    SENT_ELSEWHERE,
    Account,
    CorpusMessage,
    MigrateRun,
    PausableProxy,
    assert_same,
    build_corpus,
    compare_accounts,
    corpus_account,
    dump_account,
    imap_connect,
    maildir_count,
    message_count,
    migrate_argv,
    run_migrate,
    seed_imap,
    special_use_conf,
    start_migrate,
)
from tests.interop.peers import DovecotInstance, write_plain_passwd

pytestmark = pytest.mark.interop

USER = "alice"
SRC_PW = "src-Migrate-Pw!1"
DST_PW = "dst-Migrate-Pw!2"
KILL_POINTS = (12, 70, 150)  # destination message counts at which the copier is killed

DovecotFactory = Callable[..., DovecotInstance]


@dataclass
class Peer:
    dc: DovecotInstance
    password: str

    @property
    def imap_url(self) -> str:
        return f"imap://{USER}@127.0.0.1:{self.dc.imap_port}"

    @property
    def pop3_url(self) -> str:
        return f"pop3://{USER}@127.0.0.1:{self.dc.pop3_port}"

    @property
    def imap_port(self) -> int:
        assert self.dc.imap_port is not None
        return self.dc.imap_port

    @property
    def maildir(self) -> Path:
        return self.dc.data_dir / "mail" / USER / "Maildir"

    def dump(self) -> Account:
        return dump_account(self.imap_port, USER, self.password)


def make_peer(
    factory: DovecotFactory,
    root: Path,
    name: str,
    password: str,
    *,
    separator: str,
    sent: str | None,
    create_sent: bool = False,
) -> Peer:
    """A started Dovecot for ``alice``; ``sent`` (if any) is declared ``\\Sent``."""
    base = root / name
    base.mkdir()
    passwd = write_plain_passwd(base / "users.passwd", {USER: password})
    extra = special_use_conf(sent, "Sent", create=create_sent) if sent else ""
    dc = factory(base / "data", passwd, separator=separator, extra_conf=extra)
    return Peer(dc, password)


@pytest.fixture(scope="module")
def corpus() -> list[CorpusMessage]:
    return build_corpus()


@pytest.fixture
def source(dovecot_factory: DovecotFactory, peer_dir: Path, corpus: list[CorpusMessage]) -> Peer:
    """Dovecot with separator ``/``, ``Sent`` declared ``\\Sent``, seeded with the corpus."""
    peer = make_peer(dovecot_factory, peer_dir, "src", SRC_PW, separator="/", sent="Sent")
    seed_imap(peer.imap_port, USER, SRC_PW, corpus)
    return peer


def dest_peer(
    factory: DovecotFactory, root: Path, *, separator: str = ".", sent: bool = True
) -> Peer:
    """A fresh destination; with ``sent``, its ``\\Sent`` folder is ``Sent Messages``."""
    return make_peer(
        factory,
        root,
        f"dst-{time.monotonic_ns()}",
        DST_PW,
        separator=separator,
        sent=SENT_ELSEWHERE if sent else None,
        create_sent=sent,
    )


def check_run(run: MigrateRun, *, rc: int = 0) -> dict[str, int]:
    assert run.rc == rc, run.output()
    assert run.report is not None, f"no --report-json written\n{run.output()}"
    return run.totals()


def imap_to_imap(
    src: Peer, dst: Peer, work: Path, *extra: str, state: Path | None = None
) -> MigrateRun:
    return run_migrate(
        src.imap_url,
        dst.imap_url,
        work,
        src_password=src.password,
        dst_password=dst.password,
        state=state if state is not None else work / "state.sqlite",
        extra=extra,
    )


# --- the source as seeded ------------------------------------------------------------------------


def test_seeded_source_reads_back_as_the_corpus(source: Peer, corpus: list[CorpusMessage]) -> None:
    """The harness itself: what dump_account reads is what seed_imap wrote."""
    expected = corpus_account(corpus, {SENT: "\\Sent"})
    got = source.dump()
    assert_same(expected, got)
    assert got[SENT].special_use == "\\Sent"
    assert ("Empty",) in got and not got[("Empty",)].messages
    assert message_count(got) == len(corpus)


# --- IMAP to IMAP ------------------------------------------------------------------------------


def test_imap_slash_to_dot_rerun_flags_verify(
    source: Peer, dovecot_factory: DovecotFactory, peer_dir: Path, tmp_path: Path
) -> None:
    dst = dest_peer(dovecot_factory, peer_dir, separator=".")
    src_view = source.dump()
    total = message_count(src_view)

    first = imap_to_imap(source, dst, tmp_path)
    totals = check_run(first)
    assert totals["copied"] == total, first.output()
    assert totals["failed"] == 0
    after = dst.dump()
    assert_same(src_view, after)
    # \Sent went to the destination's \Sent folder, not to a new "Sent"
    assert after[(SENT_ELSEWHERE,)].special_use == "\\Sent"
    assert len(after[(SENT_ELSEWHERE,)].messages) == len(src_view[SENT].messages)
    assert SENT not in after

    # re-run: nothing copied, nothing changed
    again = imap_to_imap(source, dst, tmp_path)
    totals = check_run(again)
    assert totals["copied"] == 0, again.output()
    assert totals["skipped_present"] == total
    assert_same(src_view, dst.dump())
    print(
        f"first run {first.seconds:.2f} s, re-run {again.seconds:.2f} s "
        f"({100 * again.seconds / first.seconds:.0f} %)"
    )

    # flags changed on the source: +\Flagged, -\Seen, +keyword
    client = imap_connect(source.imap_port, USER, SRC_PW)
    try:
        client.select_folder("INBOX")
        uids = sorted(client.search("ALL"))
        client.add_flags(uids[0], ["\\Flagged"])
        client.remove_flags(uids[1], ["\\Seen"])
        client.add_flags(uids[2], ["Later", "\\Answered"])
        client.select_folder("Projects/2024")
        client.set_flags(sorted(client.search("ALL"))[0], ["\\Draft"])
    finally:
        client.logout()
    changed = source.dump()
    assert compare_accounts(src_view, changed), "the flag changes did not happen"
    sync = imap_to_imap(source, dst, tmp_path)
    totals = check_run(sync)
    assert totals["copied"] == 0, sync.output()
    assert totals["flags_synced"] >= 3, sync.output()
    assert_same(changed, dst.dump())

    # --verify: every message hashed again on both sides
    verify = imap_to_imap(source, dst, tmp_path, "--verify")
    totals = check_run(verify)
    assert totals["copied"] == 0
    assert totals["verify_failed"] == 0, verify.output()
    assert totals["verified"] == total, verify.output()


def test_imap_dot_to_slash(
    dovecot_factory: DovecotFactory, peer_dir: Path, corpus: list[CorpusMessage], tmp_path: Path
) -> None:
    src = make_peer(dovecot_factory, peer_dir, "src-dot", SRC_PW, separator=".", sent="Sent")
    seed_imap(src.imap_port, USER, SRC_PW, corpus)
    dst = dest_peer(dovecot_factory, peer_dir, separator="/")
    src_view = src.dump()
    wrong = run_migrate(
        src.imap_url,
        dst.imap_url,
        tmp_path / "wrong",
        src_password=SRC_PW,
        dst_password="not-the-password",
        state=tmp_path / "state.sqlite",
    )
    assert wrong.rc == 3, wrong.output()  # login failure
    assert message_count(dst.dump()) == 0
    run = imap_to_imap(src, dst, tmp_path, "-j", "2")
    totals = check_run(run)
    assert totals["copied"] == len(corpus), run.output()
    dst_view = dst.dump()
    assert_same(src_view, dst_view)
    assert ("Projects", "2024", "Q1") in dst_view  # nested, split on "." and joined with "/"


# --- other sources -------------------------------------------------------------------------------


def test_pop3_to_imap(
    source: Peer, dovecot_factory: DovecotFactory, peer_dir: Path, tmp_path: Path
) -> None:
    """POP3 has INBOX only, no flags: hashes and the header-derived dates must arrive."""
    dst = dest_peer(dovecot_factory, peer_dir, separator="/", sent=False)
    run = run_migrate(
        source.pop3_url,
        dst.imap_url,
        tmp_path,
        src_password=SRC_PW,
        dst_password=DST_PW,
        state=tmp_path / "state.sqlite",
    )
    src_view = source.dump()
    inbox = len(src_view[INBOX].messages)
    totals = check_run(run)
    assert totals["copied"] == inbox, run.output()
    dst_view = dst.dump()
    # every corpus message's Date (or Received) equals the INTERNALDATE it was seeded with
    diffs = compare_accounts(src_view, dst_view, flags=False, only=[INBOX])
    assert not diffs, "\n".join(diffs)
    others = {name: len(f.messages) for name, f in dst_view.items() if name != INBOX and f.messages}
    assert not others, others
    again = run_migrate(
        source.pop3_url,
        dst.imap_url,
        tmp_path,
        src_password=SRC_PW,
        dst_password=DST_PW,
        state=tmp_path / "state.sqlite",
    )
    assert check_run(again)["copied"] == 0, again.output()
    assert len(dst.dump()[INBOX].messages) == inbox


def test_imap_to_maildir_to_imap(
    source: Peer, dovecot_factory: DovecotFactory, peer_dir: Path, tmp_path: Path
) -> None:
    maildir = tmp_path / "Maildir"
    out = run_migrate(
        source.imap_url,
        f"maildir:{maildir}",
        tmp_path / "out",
        src_password=SRC_PW,
        state=tmp_path / "out.sqlite",
    )
    src_view = source.dump()
    assert check_run(out)["copied"] == message_count(src_view), out.output()
    assert (maildir / "cur").is_dir() and (maildir / ".Projects.2024.Q1" / "cur").is_dir()

    dst = dest_peer(dovecot_factory, peer_dir, separator="/", sent=False)
    back = run_migrate(
        f"maildir:{maildir}",
        dst.imap_url,
        tmp_path / "back",
        dst_password=DST_PW,
        state=tmp_path / "back.sqlite",
    )
    assert check_run(back)["copied"] == message_count(src_view), back.output()
    assert_same(src_view, dst.dump())


def _mbox_message(subject: str, date: datetime, body: str, extra: str = "") -> str:
    return (
        f"From: Old Friend <friend@remote.test>\nTo: alice@example.org\nSubject: {subject}\n"
        f"Date: {email.utils.format_datetime(date)}\n"
        f"Message-ID: <{subject.replace(' ', '-')}@mbox.test>\n"
        f"{extra}\n{body}"
    )


def test_mbox_to_imap(dovecot_factory: DovecotFactory, peer_dir: Path, tmp_path: Path) -> None:
    """A hand-written mboxrd: Status/X-Status/X-Keywords become flags and leave the
    bytes; ``>From`` loses one ``>``; the date comes from the Date header."""
    d1 = datetime(1997, 3, 14, 9, 26, 53, tzinfo=UTC)
    d2 = datetime(2003, 10, 1, 18, 0, 0, tzinfo=UTC)
    d3 = datetime(1999, 12, 31, 22, 0, 0, tzinfo=UTC)
    d4 = datetime(2021, 5, 5, 5, 5, 5, tzinfo=UTC)
    # (message as it must arrive, file text of its header additions, expected flags)
    cases = [
        (
            _mbox_message("read and answered", d1, "Hello\n\nFrom the start of a line.\n"),
            "Status: RO\nX-Status: AF\n",
            "Hello\n\n>From the start of a line.\n",
            {"\\Seen", "\\Answered", "\\Flagged"},
        ),
        (
            _mbox_message("unread", d2, ">From already quoted once\nend\n"),
            "Status: O\n",
            ">>From already quoted once\nend\n",
            set(),
        ),
        (
            _mbox_message("draft and deleted", d3, "draft text\n"),
            "Status: R\nX-Status: TD\nX-Keywords: Work $Forwarded\n",
            "draft text\n",
            {"\\Seen", "\\Draft", "\\Deleted", "Work", "$Forwarded"},
        ),
        (_mbox_message("no status at all", d4, "plain\n"), "", "plain\n", set()),
    ]
    text = []
    expected: list[tuple[str, frozenset[str], datetime]] = []
    for (message, status, quoted_body, flags), date in zip(cases, (d1, d2, d3, d4), strict=True):
        head, _body = message.split("\n\n", 1)
        text.append(
            f"From friend@remote.test {date.strftime('%a %b %e %H:%M:%S %Y')}\n"
            f"{head}\n{status}\n{quoted_body}\n"
        )
        canonical = message.replace("\n", "\r\n").encode()
        expected.append((hashlib.sha256(canonical).hexdigest(), frozenset(flags), date))
    mbox = tmp_path / "old.mbox"
    mbox.write_text("".join(text))

    dst = dest_peer(dovecot_factory, peer_dir, separator="/", sent=False)
    run = run_migrate(
        f"mbox:{mbox}", dst.imap_url, tmp_path, dst_password=DST_PW, state=tmp_path / "s.sqlite"
    )
    assert check_run(run)["copied"] == len(cases), run.output()
    got = [(m.sha256, m.flags, m.internaldate) for m in dst.dump()[INBOX].messages]
    assert Counter(got) == Counter(expected), f"got {got}\nexpected {expected}"
    again = run_migrate(
        f"mbox:{mbox}", dst.imap_url, tmp_path, dst_password=DST_PW, state=tmp_path / "s.sqlite"
    )
    assert check_run(again)["copied"] == 0, again.output()


# --- to mailgw's own IMAP server -----------------------------------------------------------------


def test_imap_to_mailgw_serve(source: Peer, tmp_path: Path, certs: CertFiles) -> None:
    listener = Listener("imap", "imap", "none", trusted=True)
    with ServeProcess(tmp_path / "serve", certs=certs, listeners=(listener,)) as serve:
        serve.add_user(USER, DST_PW)
        port = serve.port("imap")
        run = run_migrate(
            source.imap_url,
            f"imap://{USER}@127.0.0.1:{port}",
            tmp_path / "work",
            src_password=SRC_PW,
            dst_password=DST_PW,
            state=tmp_path / "state.sqlite",
        )
        src_view = source.dump()
        assert check_run(run)["copied"] == message_count(src_view), run.output() + serve.log()
        dst_view = dump_account(port, USER, DST_PW)
        assert_same(src_view, dst_view)
        assert dst_view[SENT].special_use == "\\Sent"
        again = run_migrate(
            source.imap_url,
            f"imap://{USER}@127.0.0.1:{port}",
            tmp_path / "work",
            src_password=SRC_PW,
            dst_password=DST_PW,
            state=tmp_path / "state.sqlite",
        )
        assert check_run(again)["copied"] == 0, again.output()
        assert_same(src_view, dump_account(port, USER, DST_PW))


# --- no duplicates -------------------------------------------------------------------------------


def test_uidvalidity_change_copies_nothing_twice(
    source: Peer, dovecot_factory: DovecotFactory, peer_dir: Path, tmp_path: Path
) -> None:
    """A source folder deleted and recreated with the same content: new UIDVALIDITY,
    no state for it, matched by content at the destination."""
    dst = dest_peer(dovecot_factory, peer_dir)
    check_run(imap_to_imap(source, dst, tmp_path))
    before = source.dump()
    folder = "Données"
    client = imap_connect(source.imap_port, USER, SRC_PW)
    try:
        client.select_folder(folder, readonly=True)
        got = client.fetch(client.search("ALL"), ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"])
        saved = [got[uid] for uid in sorted(got)]
        client.close_folder()
        client.delete_folder(folder)
        client.create_folder(folder)
        for item in saved:
            client.append(
                folder,
                item[b"BODY[]"],
                flags=[f for f in item[b"FLAGS"] if f != b"\\Recent"],
                msg_time=item[b"INTERNALDATE"],
            )
    finally:
        client.logout()
    after = source.dump()
    if after[("Données",)].uidvalidity == before[("Données",)].uidvalidity:
        source.dc.doveadm(
            "mailbox",
            "update",
            "-u",
            USER,
            "--uid-validity",
            str(before[("Données",)].uidvalidity + 1000),
            folder,
        )
        after = source.dump()
    assert after[("Données",)].uidvalidity != before[("Données",)].uidvalidity
    assert_same(before, after)  # same content, flags, dates

    run = imap_to_imap(source, dst, tmp_path)
    totals = check_run(run)
    assert totals["copied"] == 0, run.output()
    assert totals["failed"] == 0
    assert_same(after, dst.dump())


def test_prefilled_destination_without_state(
    source: Peer,
    dovecot_factory: DovecotFactory,
    peer_dir: Path,
    corpus: list[CorpusMessage],
    tmp_path: Path,
) -> None:
    """Half the messages are already at the destination (another tool copied them);
    a first run with no state copies only the other half."""
    dst = dest_peer(dovecot_factory, peer_dir, separator="/", sent=False)
    already = corpus[::2]
    seed_imap(dst.imap_port, USER, DST_PW, already)
    run = imap_to_imap(source, dst, tmp_path, state=tmp_path / "fresh.sqlite")
    totals = check_run(run)
    assert totals["copied"] == len(corpus) - len(already), run.output()
    assert totals["skipped_present"] == len(already), run.output()
    assert_same(source.dump(), dst.dump())


def test_sigkill_at_three_points_then_finish(
    dovecot_factory: DovecotFactory,
    peer_dir: Path,
    corpus: list[CorpusMessage],
    tmp_path: Path,
) -> None:
    """The copier is frozen (proxy paused) when the destination holds N messages,
    then SIGKILLed; three times, then a run finishes: identical, zero duplicates."""
    src = make_peer(dovecot_factory, peer_dir, "src-kill", SRC_PW, separator="/", sent="Sent")
    filler = [
        CorpusMessage(
            folder,
            (
                f"From: filler@remote.test\r\nSubject: filler {k}\r\n"
                f"Message-ID: <filler-{k}@remote.test>\r\n\r\n" + f"filler body {k}\r\n" * 40
            ).encode(),
            ("\\Seen",) if k % 3 else (),
            datetime(2010, 1, 1, tzinfo=UTC).replace(minute=k % 60, hour=k % 24),
            "filler",
        )
        for k, folder in enumerate([INBOX, ("Projects",), ("Listes & Co",)] * 60)
    ]
    everything = corpus + filler
    seed_imap(src.imap_port, USER, SRC_PW, everything)
    dst = dest_peer(dovecot_factory, peer_dir)
    src_view = src.dump()
    total = message_count(src_view)
    assert total == len(everything)
    state = tmp_path / "state.sqlite"
    with PausableProxy(dst.imap_port) as proxy:
        dst_url = f"imap://{USER}@127.0.0.1:{proxy.port}"
        argv = migrate_argv(
            src.imap_url, dst_url, tmp_path, src_password=SRC_PW, dst_password=DST_PW, state=state
        )
        for point in KILL_POINTS:
            proc = start_migrate(argv, tmp_path)
            deadline = time.monotonic() + 120
            while maildir_count(dst.maildir) < point:
                assert proc.poll() is None, (
                    f"the copier exited ({proc.returncode}) before {point} messages arrived\n"
                    + (tmp_path / "bg.stderr").read_text(errors="replace")
                )
                assert time.monotonic() < deadline, f"{point} messages did not arrive"
                time.sleep(0.002)
            proxy.pause()
            time.sleep(0.2)
            assert proc.poll() is None, "the copier finished while frozen"
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            proxy.resume()
            print(f"killed at {maildir_count(dst.maildir)} messages (point {point})")
        assert maildir_count(dst.maildir) < total
        finish = run_migrate(
            src.imap_url,
            dst_url,
            tmp_path,
            src_password=SRC_PW,
            dst_password=DST_PW,
            state=state,
            extra=("-j", "2"),
        )
        check_run(finish)
        dst_view = dst.dump()
        assert_same(src_view, dst_view)  # an extra message would be a duplicate
        assert message_count(dst_view) == total
        verify = run_migrate(
            src.imap_url,
            dst_url,
            tmp_path,
            src_password=SRC_PW,
            dst_password=DST_PW,
            state=state,
            extra=("--verify",),
        )
        totals = check_run(verify)
        assert totals["copied"] == 0, verify.output()
        assert totals["verify_failed"] == 0, verify.output()
        assert totals["verified"] == total, verify.output()
