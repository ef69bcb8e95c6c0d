"""migrate_account against in-memory endpoints (tests/migrate/fakes.py)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mailgw.migrate.engine import migrate_account
from mailgw.migrate.model import INBOX, FolderName, MigrateOptions
from mailgw.migrate.results import AccountReport
from mailgw.migrate.state import PENDING, StateDB, StateRow
from tests.migrate.fakes import FakeAccount, FakeEndpoint, SimulatedCrash, make_message

WORK: FolderName = ("Projects", "Work")


def date(day: int) -> datetime:
    return datetime(2023, 3, day, 9, 30, tzinfo=UTC)


def source_account(n_inbox: int = 6, n_work: int = 4) -> FakeAccount:
    a = FakeAccount()
    for i in range(n_inbox):
        a.add(INBOX, make_message(i), ["\\Seen"] if i % 2 else [], date(1 + i))
    a.add_folder(("Projects",), selectable=False)
    for i in range(n_work):
        a.add(WORK, make_message(100 + i), ["\\Flagged", "$Work"], date(10 + i))
    a.add_folder(("Sent Items",), "\\Sent")
    a.add(("Sent Items",), make_message(200), ["\\Seen"], date(20))
    return a


def dest_account(**kw: Any) -> FakeAccount:
    d = FakeAccount(**kw)
    d.add_folder(("Sent",), "\\Sent")
    return d


def run(
    src: FakeAccount,
    dst: FakeAccount,
    state_path: Path,
    state: StateDB | None = None,
    **opts: Any,
) -> AccountReport:
    db = state or StateDB(state_path, readonly=bool(opts.get("dry_run")))
    try:
        return asyncio.run(
            migrate_account(
                FakeEndpoint(src, "imap://src@a"),
                FakeEndpoint(dst, "imap://dst@b"),
                MigrateOptions(**opts),
                db,
            )
        )
    finally:
        if state is None:
            db.close()


def crash_run(src: FakeAccount, dst: FakeAccount, state_path: Path, **opts: Any) -> None:
    with pytest.raises(SimulatedCrash):
        run(src, dst, state_path, **opts)


MAPPING = {INBOX: INBOX, WORK: WORK, ("Sent Items",): ("Sent",)}


def assert_mirror(
    src: FakeAccount, dst: FakeAccount, mapping: dict[FolderName, FolderName]
) -> None:
    """Every source folder's messages (bytes, flags, date) exactly once at the destination."""
    for s, d in mapping.items():
        assert dst.contents(d) == src.contents(s), f"{s} -> {d}"


def totals(r: AccountReport) -> dict[str, int]:
    return r.totals()


# -- first copy, re-runs ---------------------------------------------------------------


def test_first_copy(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    r = run(src, dst, tmp_path / "s.sqlite")
    assert r.error is None and r.verdict == "complete" and r.exit_code == 0
    assert_mirror(src, dst, MAPPING)
    assert ("Projects",) in dst.folders  # the non-selectable parent kept the hierarchy
    t = totals(r)
    assert t["copied"] == 11 and t["source_count"] == 11 and t["failed"] == 0
    assert t["copied_bytes"] == sum(
        len(m.data) for f in src.folders.values() for m in f.messages.values()
    )
    assert [f.source for f in r.folders] == ["INBOX", "Projects/Work", "Sent Items"]
    assert [f.destination for f in r.folders] == ["INBOX", "Projects/Work", "Sent"]
    assert src.open == 0 and dst.open == 0
    assert dst.calls["index"] == 0 and dst.calls["fetch_bodies"] == 0  # no matching needed


def test_rerun_copies_nothing(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    run(src, dst, tmp_path / "s.sqlite")
    appends, fetched = dst.calls["append"], src.calls["fetched"]
    r = run(src, dst, tmp_path / "s.sqlite")
    t = totals(r)
    assert t["copied"] == 0 and t["skipped_present"] == 11 and r.exit_code == 0
    assert dst.calls["append"] == appends and src.calls["fetched"] == fetched
    assert dst.calls["fetch_bodies"] == 0 and dst.calls["set_flags"] == 0
    assert_mirror(src, dst, MAPPING)


def test_rerun_copies_only_new_messages(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    run(src, dst, tmp_path / "s.sqlite")
    src.add(INBOX, make_message(50), ["\\Answered"], date(25))
    r = run(src, dst, tmp_path / "s.sqlite")
    assert totals(r)["copied"] == 1 and totals(r)["skipped_present"] == 11
    assert_mirror(src, dst, MAPPING)


def test_flag_change_synced(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    run(src, dst, tmp_path / "s.sqlite")
    m = src.folders[INBOX].messages[1]
    m.flags = {"\\Seen", "\\Answered", "$Forwarded"}
    r = run(src, dst, tmp_path / "s.sqlite")
    assert totals(r)["flags_synced"] == 1 and totals(r)["copied"] == 0
    assert_mirror(src, dst, MAPPING)
    # and the state remembers: a third run syncs nothing
    r = run(src, dst, tmp_path / "s.sqlite")
    assert totals(r)["flags_synced"] == 0


def test_unchanged_folders_are_not_snapshotted_again(tmp_path: Path) -> None:
    """With change tokens (IMAP CONDSTORE), a re-run skips folders whose token is the one
    saved by the last clean run, and still notices a flag change or a new message."""
    src, dst = source_account(), dest_account()
    src.change_tokens = True
    run(src, dst, tmp_path / "s.sqlite")
    snapshots = src.calls["snapshot"]
    r = run(src, dst, tmp_path / "s.sqlite")
    assert src.calls["snapshot"] == snapshots  # nothing changed: no snapshot at all
    t = totals(r)
    assert t["skipped_present"] == 11 and t["source_count"] == 11 and t["copied"] == 0
    src.folders[INBOX].messages[1].flags = {"\\Flagged"}
    src.add(WORK, make_message(77), [], date(26))
    r = run(src, dst, tmp_path / "s.sqlite")
    assert src.calls["snapshot"] == snapshots + 2  # INBOX and Work changed, Sent did not
    assert totals(r)["flags_synced"] == 1 and totals(r)["copied"] == 1
    assert_mirror(src, dst, MAPPING)
    # -j 3 with nothing changed: no snapshot and no connection beyond the first pair
    opened = src.opened
    r = run(src, dst, tmp_path / "s.sqlite", jobs=3)
    assert src.opened == opened + 1 and totals(r)["skipped_present"] == 12
    assert src.calls["snapshot"] == snapshots + 2
    # filters are part of the token: a run with other filters looks again
    run(src, dst, tmp_path / "s.sqlite", min_size=1)
    assert src.calls["snapshot"] == snapshots + 5


def test_uidvalidity_change_no_duplicates(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    run(src, dst, tmp_path / "s.sqlite")
    src.renumber(INBOX)
    src.add(INBOX, make_message(60), [], date(26))
    r = run(src, dst, tmp_path / "s.sqlite")
    f = r.folders[0]
    assert f.source == "INBOX" and f.copied == 1 and f.skipped_present == 6
    assert_mirror(src, dst, MAPPING)
    # the state was rebuilt: the next run needs no content matching
    before = dst.calls["fetch_bodies"]
    r = run(src, dst, tmp_path / "s.sqlite")
    assert totals(r)["copied"] == 0 and dst.calls["fetch_bodies"] == before


def test_destination_uidvalidity_change_no_duplicates(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    run(src, dst, tmp_path / "s.sqlite")
    dst.renumber(WORK)
    r = run(src, dst, tmp_path / "s.sqlite")
    assert totals(r)["copied"] == 0
    assert_mirror(src, dst, MAPPING)


def test_prefilled_destination_without_state(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    # an earlier tool copied part of INBOX; the user has mail of their own there too
    for m in list(src.folders[INBOX].messages.values())[:4]:
        dst.add(INBOX, m.data, sorted(m.flags), m.internaldate)
    dst.add(INBOX, make_message(999), ["\\Seen"], date(2))
    r = run(src, dst, tmp_path / "s.sqlite")
    inbox = r.folders[0]
    assert inbox.copied == 2 and inbox.skipped_present == 4
    # 6 source messages once each, plus the user's own
    own = make_message(999).replace(b"\n", b"\r\n")
    assert sorted(dst.hashes(INBOX)) == sorted(
        [*src.hashes(INBOX), hashlib.sha256(own).hexdigest()]
    )


def test_matched_message_gets_source_flags(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    m = src.folders[INBOX].messages[2]  # \Seen at the source
    dst.add(INBOX, m.data, [], m.internaldate)
    r = run(src, dst, tmp_path / "s.sqlite")
    assert r.folders[0].flags_synced == 1
    assert_mirror(src, dst, MAPPING)


def test_identical_source_messages_both_copied(tmp_path: Path) -> None:
    src, dst = FakeAccount(), FakeAccount()
    data = make_message(1)
    src.add(INBOX, data, [], date(1))
    src.add(INBOX, data, [], date(1))
    run(src, dst, tmp_path / "s.sqlite")
    assert len(dst.folders[INBOX].messages) == 2
    # a fresh state against the filled destination: each source copy claims one
    r = run(src, dst, tmp_path / "other.sqlite")
    assert r.folders[0].skipped_present == 2 and r.folders[0].copied == 0
    assert len(dst.folders[INBOX].messages) == 2
    # one of the two lost at the destination: exactly one comes back
    dst.folders[INBOX].messages.pop(min(dst.folders[INBOX].messages))
    r = run(src, dst, tmp_path / "third.sqlite")
    assert r.folders[0].copied == 1 and len(dst.folders[INBOX].messages) == 2


def test_same_message_id_different_bodies(tmp_path: Path) -> None:
    src, dst = FakeAccount(), FakeAccount()
    a = make_message(1, mid="<same@x>", body="first")
    b = make_message(1, mid="<same@x>", body="other")  # same size, other bytes
    assert len(a) == len(b)
    src.add(INBOX, a, [], date(1))
    src.add(INBOX, b, [], date(1))
    dst.add(INBOX, a, [], date(1))
    r = run(src, dst, tmp_path / "s.sqlite")
    assert r.folders[0].copied == 1 and r.folders[0].skipped_present == 1
    assert dst.contents(INBOX) == src.contents(INBOX)


def test_messages_without_message_id(tmp_path: Path) -> None:
    src, dst = FakeAccount(), FakeAccount()
    for i in range(3):
        src.add(INBOX, make_message(i, mid=None), [], date(1))
    dst.add(INBOX, make_message(1, mid=None), [], date(1))
    r = run(src, dst, tmp_path / "s.sqlite")
    assert r.folders[0].copied == 2 and r.folders[0].skipped_present == 1
    assert dst.contents(INBOX) == src.contents(INBOX)


def test_without_uidplus_ids_resolved(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account(uidplus=False)
    run(src, dst, tmp_path / "s.sqlite", batch_messages=3)
    assert_mirror(src, dst, MAPPING)
    db = StateDB(tmp_path / "s.sqlite")
    rows = db.rows(INBOX, INBOX)
    db.close()
    assert len(rows) == 6 and all(r.dst_uid is not None for r in rows)
    src.folders[INBOX].messages[1].flags = {"\\Flagged"}
    r = run(src, dst, tmp_path / "s.sqlite", verify=True)
    assert totals(r)["flags_synced"] == 1 and totals(r)["verified"] == 11
    assert_mirror(src, dst, MAPPING)


# -- crashes -------------------------------------------------------------------------


class CrashingState(StateDB):
    """Dies when it is asked to write the n-th batch of pending rows."""

    def __init__(self, path: Path, crash_at_pending: int) -> None:
        super().__init__(path)
        self.left = crash_at_pending

    def put(self, rows: Any) -> None:
        if rows and all(r.status == PENDING for r in rows):
            self.left -= 1
            if self.left <= 0:
                raise SimulatedCrash("killed before the pending commit")
        super().put(rows)


class CrashAfterPendingState(StateDB):
    """Dies when asked to write done rows after the n-th append (the append went out)."""

    def __init__(self, path: Path, crash_at_done: int) -> None:
        super().__init__(path)
        self.left = crash_at_done

    def put(self, rows: Any) -> None:
        rows = list(rows)
        if (
            rows
            and all(r.status != PENDING for r in rows)
            and any(r.dst_uidnext is None for r in rows)
        ):
            self.left -= 1
            if self.left <= 0:
                raise SimulatedCrash("killed before the done commit")
        super().put(rows)


def final_check(src: FakeAccount, dst: FakeAccount, path: Path) -> None:
    r = run(src, dst, path)
    assert r.exit_code == 0, r.to_json()
    assert_mirror(src, dst, MAPPING)
    db = StateDB(path)
    leftover = [
        row for f in ((INBOX, INBOX), (WORK, WORK)) for row in db.rows(*f) if row.status == PENDING
    ]
    db.close()
    assert leftover == []
    r = run(src, dst, path)
    assert totals(r)["copied"] == 0 and totals(r)["skipped_present"] == 11


@pytest.mark.parametrize("n", [1, 2, 4])
def test_crash_before_pending_commit(tmp_path: Path, n: int) -> None:
    src, dst = source_account(), dest_account()
    path = tmp_path / "s.sqlite"
    db = CrashingState(path, n)
    with pytest.raises(SimulatedCrash):
        run(src, dst, path, state=db, batch_messages=2)
    db.close()
    final_check(src, dst, path)


@pytest.mark.parametrize("n", [1, 3])
def test_crash_after_append_before_done(tmp_path: Path, n: int) -> None:
    src, dst = source_account(), dest_account()
    path = tmp_path / "s.sqlite"
    db = CrashAfterPendingState(path, n)
    with pytest.raises(SimulatedCrash):
        run(src, dst, path, state=db, batch_messages=2)
    db.close()
    assert dst.total() > 0
    final_check(src, dst, path)


@pytest.mark.parametrize("n", [0, 1, 3, 5, 8])
def test_crash_mid_batch(tmp_path: Path, n: int) -> None:
    """A destination without MULTIAPPEND stored part of a batch when the process died."""
    src, dst = source_account(), dest_account(multiappend=False, uidplus=False)
    dst.crash_after_appends = n
    crash_run(src, dst, tmp_path / "s.sqlite", batch_messages=4)
    assert dst.total() == n
    dst.crash_after_appends = None
    final_check(src, dst, tmp_path / "s.sqlite")


def test_crash_after_append_returned_nothing(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    dst.crash_after_append_return = True
    crash_run(src, dst, tmp_path / "s.sqlite", batch_messages=3)
    assert dst.total() == 3
    final_check(src, dst, tmp_path / "s.sqlite")


def test_repeated_crashes_then_complete(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account(multiappend=False)
    path = tmp_path / "s.sqlite"
    for n in (2, 3, 7):
        dst.crash_after_appends = n
        crash_run(src, dst, path, batch_messages=3)
    dst.crash_after_appends = None
    final_check(src, dst, path)


def test_connection_lost_mid_batch_reconnects(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account(multiappend=False)
    dst.lose_connection_after_appends = 2
    r = run(src, dst, tmp_path / "s.sqlite", batch_messages=4)
    assert r.folders[0].errors and "connection lost" in r.folders[0].errors[0]
    assert r.exit_code == 1
    # the other folders went on over fresh connections
    assert r.folders[1].copied == 4 and r.folders[2].copied == 1
    assert src.open == 0 and dst.open == 0
    final_check(src, dst, tmp_path / "s.sqlite")


# -- refusals, flags, filters ------------------------------------------------------------


def test_appendlimit_refusal_reported_run_goes_on(tmp_path: Path) -> None:
    src = source_account()
    big_uid = src.add(INBOX, make_message(77, size=5000), [], date(3))
    dst = dest_account(append_limit=3000)
    r = run(src, dst, tmp_path / "s.sqlite")
    inbox = r.folders[0]
    assert inbox.failed == 1 and inbox.copied == 6
    size = len(src.folders[INBOX].messages[big_uid].data)
    assert inbox.errors == [
        f"{big_uid}: too big for the destination ({size} bytes > APPENDLIMIT 3000)"
    ]
    assert r.verdict == "incomplete" and r.exit_code == 1
    assert totals(r)["copied"] == 11
    assert len(dst.folders[INBOX].messages) == 6


def test_refused_message_reported_and_retried_later(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    bad = src.folders[WORK].messages[2].data
    dst.refuse = lambda data: "NO bad byte in message" if data == bad else None
    r = run(src, dst, tmp_path / "s.sqlite", batch_messages=10)
    work = r.folders[1]
    assert work.failed == 1 and work.copied == 3 and work.errors == ["2: NO bad byte in message"]
    dst.refuse = None
    r = run(src, dst, tmp_path / "s.sqlite")
    assert totals(r)["copied"] == 1 and r.exit_code == 0
    assert_mirror(src, dst, MAPPING)


def test_permanent_flags_dropped_and_reported(tmp_path: Path) -> None:
    src = source_account()
    dst = dest_account(permanent_flags=frozenset({"\\Seen", "\\Flagged", "\\Answered"}))
    r = run(src, dst, tmp_path / "s.sqlite")
    work = r.folders[1]
    assert work.flags_dropped == ["$Work"]
    assert r.folders[0].flags_dropped == []
    assert all(m.flags == {"\\Flagged"} for m in dst.folders[WORK].messages.values())
    # dropped flags are not an error
    assert r.exit_code == 0


def test_permanent_flags_wildcard_keeps_keywords(tmp_path: Path) -> None:
    src = source_account()
    dst = dest_account(permanent_flags=frozenset({"\\Seen", "\\Flagged", "\\*"}))
    r = run(src, dst, tmp_path / "s.sqlite")
    assert r.folders[1].flags_dropped == []
    assert all(m.flags == {"\\Flagged", "$Work"} for m in dst.folders[WORK].messages.values())


def test_recent_never_copied(tmp_path: Path) -> None:
    src, dst = FakeAccount(), FakeAccount()
    src.add(INBOX, make_message(1), ["\\Recent", "\\Seen"], date(1))
    run(src, dst, tmp_path / "s.sqlite")
    assert dst.contents(INBOX)[0][1] == ("\\Seen",)


def test_size_and_date_filters(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    src.add(INBOX, make_message(70, size=4000), [], date(3))
    r = run(
        src,
        dst,
        tmp_path / "s.sqlite",
        since=date(2),
        before=date(5),
        max_size=1000,
        include=["^INBOX$"],
    )
    assert dst.dates(INBOX) == [date(2), date(3), date(4)]
    assert r.folders[0].source_count == 3 and len(r.folders) == 1
    r = run(src, dst, tmp_path / "s2.sqlite", min_size=1000, include=["^INBOX$"])
    assert r.folders[0].copied == 1 and r.folders[0].skipped_present == 0
    assert len(dst.folders[INBOX].messages) == 4


def test_date_filter_on_pop3_source_after_fetch(tmp_path: Path) -> None:
    src = FakeAccount(kind="pop3")
    for day in (1, 5, 9):
        src.add(INBOX, make_message(day, date=date(day)), [], None)
    dst = FakeAccount()
    r = run(src, dst, tmp_path / "s.sqlite", since=date(4), dst_folder="Imported")
    f = r.folders[0]
    assert f.destination == "Imported" and f.copied == 2 and f.source_count == 2
    assert dst.dates(("Imported",)) == [date(5), date(9)]
    assert src.open == 0 and src.max_open == 1
    # the re-run knows the dates from the state: nothing fetched, nothing copied
    fetched = src.calls["fetched"]
    r = run(src, dst, tmp_path / "s.sqlite", since=date(4), dst_folder="Imported")
    assert r.folders[0].copied == 0 and r.folders[0].skipped_present == 2
    assert src.calls["fetched"] == fetched + 1  # only the undated, not-yet-copied one


# -- dry run, verify, delete-source ------------------------------------------------------------


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    before = {n: dst.contents(n) for n in dst.folders}
    r = run(src, dst, tmp_path / "s.sqlite", dry_run=True)
    assert r.dry_run and totals(r)["copied"] == 11
    assert totals(r)["copied_bytes"] == totals(r)["source_bytes"] > 0
    assert {n: dst.contents(n) for n in dst.folders} == before
    assert dst.calls["ensure_folder"] == 0 and dst.calls["append"] == 0
    assert src.calls["fetched"] == 0
    assert not (tmp_path / "s.sqlite").exists()
    # against an existing state file: reads it, writes nothing
    run(src, dst, tmp_path / "s.sqlite")
    src.add(INBOX, make_message(80), [], date(1))
    size = (tmp_path / "s.sqlite").stat().st_size
    r = run(src, dst, tmp_path / "s.sqlite", dry_run=True)
    assert totals(r)["copied"] == 1 and totals(r)["skipped_present"] == 11
    assert len(dst.folders[INBOX].messages) == 6
    assert (tmp_path / "s.sqlite").stat().st_size == size


def test_verify_detects_a_damaged_copy(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    r = run(src, dst, tmp_path / "s.sqlite", verify=True)
    assert totals(r)["verified"] == 11 and totals(r)["verify_failed"] == 0
    victim = next(iter(dst.folders[WORK].messages.values()))
    victim.data = victim.data.replace(b"body", b"BODY")
    r = run(src, dst, tmp_path / "s.sqlite", verify=True)
    assert totals(r)["verify_failed"] == 1 and r.exit_code == 1
    assert "differs" in r.folders[1].errors[0]


def test_delete_source_only_after_verification(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    run(src, dst, tmp_path / "s.sqlite")
    # damage one destination copy and lose another: those two stay at the source
    work = dst.folders[WORK].messages
    first, second = sorted(work)[:2]
    work[first].data = work[first].data.replace(b"body", b"BODY")
    del work[second]
    r = run(src, dst, tmp_path / "s.sqlite", delete_source=True)
    assert totals(r)["deleted_source"] == 9 and totals(r)["verify_failed"] == 2
    assert src.calls["delete"] == 3  # one call per folder (POP3 commits with QUIT)
    assert len(src.folders[WORK].messages) == 2
    assert len(src.folders[INBOX].messages) == 0
    assert r.exit_code == 1


def test_delete_source_refused_message_kept(tmp_path: Path) -> None:
    src = source_account()
    src.add(INBOX, make_message(90, size=5000), [], date(2))
    dst = dest_account(append_limit=3000)
    r = run(src, dst, tmp_path / "s.sqlite", delete_source=True, include=["INBOX"])
    assert r.folders[0].deleted_source == 6 and r.folders[0].failed == 1
    assert len(src.folders[INBOX].messages) == 1


def test_dry_run_deletes_nothing(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    run(src, dst, tmp_path / "s.sqlite")
    run(src, dst, tmp_path / "s.sqlite", dry_run=True, delete_source=True)
    assert src.total() == 11 and src.calls["delete"] == 0


# -- parallel, errors ------------------------------------------------------------------------


def many_folders() -> tuple[FakeAccount, dict[FolderName, FolderName]]:
    src = FakeAccount()
    mapping: dict[FolderName, FolderName] = {INBOX: INBOX}
    for f in range(12):
        name = ("Archive", f"{2000 + f}")
        mapping[name] = name
        for i in range(f % 4 + 1):
            src.add(name, make_message(1000 * f + i), ["\\Seen"] if i % 2 else [], date(1 + i))
    src.add(INBOX, make_message(5), [], date(1))
    return src, mapping


def test_parallel_jobs_same_result(tmp_path: Path) -> None:
    src, mapping = many_folders()
    one, three = FakeAccount(), FakeAccount()
    r1 = run(src, one, tmp_path / "one.sqlite")
    assert src.opened == 1 and one.opened == 1
    r3 = run(src, three, tmp_path / "three.sqlite", jobs=3, batch_messages=2)
    assert r3.exit_code == 0 and totals(r3) == totals(r1)
    assert [f.source for f in r3.folders] == [f.source for f in r1.folders]
    assert_mirror(src, three, mapping)
    assert src.opened == 4 and three.opened == 3  # worker 0 + two clones each
    assert src.open == 0 and three.open == 0
    r = run(src, three, tmp_path / "three.sqlite", jobs=3)
    assert totals(r)["copied"] == 0


def test_parallel_with_connection_limit(tmp_path: Path) -> None:
    src, mapping = many_folders()
    dst = FakeAccount()
    dst.max_connections = 1  # the clones are refused: one worker does it all
    r = run(src, dst, tmp_path / "s.sqlite", jobs=4)
    assert r.exit_code == 0
    assert_mirror(src, dst, mapping)
    assert dst.open == 0 and src.open == 0


def test_folder_error_does_not_stop_the_run(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    src.fail_select.add(WORK)
    r = run(src, dst, tmp_path / "s.sqlite")
    assert r.folders[1].errors and r.folders[1].copied == 0
    assert r.folders[0].copied == 6 and r.folders[2].copied == 1
    assert r.exit_code == 1 and src.open == 0 and dst.open == 0


def test_login_failure_is_exit_3(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    dst.login_fails = True
    r = run(src, dst, tmp_path / "s.sqlite")
    assert r.error is not None and "authentication failed" in r.error
    assert r.exit_code == 3 and r.verdict == "failed"
    assert src.open == 0


def test_state_of_another_pair_is_refused(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "s.sqlite")
    db.bind("imap://someone@else", "imap://dst@b")
    db.close()
    r = run(source_account(), dest_account(), tmp_path / "s.sqlite")
    assert r.exit_code == 2 and r.error is not None and "someone@else" in r.error


def test_big_messages_and_small_batches(tmp_path: Path) -> None:
    """Bodies above the in-memory limit travel as temp files; bytes stay identical."""
    src, dst = FakeAccount(), FakeAccount()
    for i in range(3):
        src.add(INBOX, make_message(i, size=(1 << 20) + 10 * i), [], date(1))
    r = run(src, dst, tmp_path / "s.sqlite", batch_bytes=1 << 20, verify=True)
    assert r.folders[0].copied == 3 and r.folders[0].verified == 3
    assert dst.contents(INBOX) == src.contents(INBOX)


def test_state_rows_record_the_copy(tmp_path: Path) -> None:
    src, dst = source_account(), dest_account()
    run(src, dst, tmp_path / "s.sqlite")
    db = StateDB(tmp_path / "s.sqlite")
    rows: list[StateRow] = db.rows(WORK, WORK)
    assert db.meta() == {"source": "imap://src@a", "destination": "imap://dst@b"}
    db.close()
    srcf, dstf = src.folders[WORK], dst.folders[WORK]
    assert {r.src_key for r in rows} == {str(u) for u in srcf.messages}
    for r in rows:
        assert r.status == "done" and r.src_uidvalidity == srcf.uidvalidity
        assert r.dst_uidvalidity == dstf.uidvalidity
        assert r.dst_uid is not None and dstf.messages[r.dst_uid].sha256 == r.sha256
        assert r.flags == frozenset({"\\Flagged", "$Work"})
