"""Change events and polling tokens (what IMAP IDLE and untagged updates use)."""

from __future__ import annotations

import asyncio
import os
import time

from mailgw.store import ChangeEvent, ChangeHub, Store
from mailgw.store.folder import StateToken

MSG = b"Subject: ev\r\n\r\nbody\r\n"


def collect(store: Store, user: str, folder: str | None) -> list[ChangeEvent]:
    got: list[ChangeEvent] = []
    store.changes.subscribe(user, folder, got.append)
    return got


def test_every_change_publishes_after_it_is_on_disk(store: Store) -> None:
    acct = store.account("alice")
    acct.ensure(special_use=False)
    inbox = acct.folder()
    got = collect(store, "alice", "INBOX")
    seen_on_disk: list[bool] = []

    def check(e: ChangeEvent) -> None:  # the file is there when the event arrives
        if e.kind == "new":
            seen_on_disk.append(
                bool(os.listdir(inbox.path / "new") or os.listdir(inbox.path / "cur"))
            )

    store.changes.subscribe("alice", "INBOX", check)
    inbox.deliver(MSG)
    uid = inbox.deliver_uid(MSG, flags={"\\Seen"})
    store.deliver_many([("alice", "INBOX")], MSG)
    inbox.messages()
    inbox.set_flags(1, frozenset({"\\Flagged"}), frozenset())
    inbox.set_flags(1, frozenset({"\\Flagged"}), frozenset())  # no change: no event
    inbox.expunge([1, 99])
    kinds = [(e.kind, e.uids) for e in got]
    assert kinds == [
        ("new", None),
        ("new", (uid,)),
        ("new", None),
        ("flags", (1,)),
        ("expunge", (1,)),
    ]
    assert seen_on_disk == [True, True, True]
    assert all(e.user == "alice" and e.folder == "INBOX" for e in got)
    assert got[3].modseq is not None and got[4].modseq is not None
    assert got[4].modseq > got[3].modseq


def test_folder_events_and_unsubscribe(store: Store) -> None:
    acct = store.account("bob")
    acct.ensure(special_use=False)
    everything = collect(store, "bob", None)
    only_a = collect(store, "bob", "A")
    other_user = collect(store, "alice", None)
    acct.create_folder("A")
    acct.create_folder("A/B")
    acct.subscribe("A")
    acct.rename_folder("A", "Z")
    acct.delete_folder("Z")
    assert [(e.kind, e.folder, e.new_name) for e in everything] == [
        ("create", "A", None),
        ("create", "A/B", None),
        ("subscriptions", "A", None),
        ("subscriptions", "Z", None),
        ("rename", "A", "Z"),
        ("rename", "A/B", "Z/B"),
        ("delete", "Z", None),
    ]
    assert [e.kind for e in only_a] == ["create", "subscriptions", "rename"]
    assert other_user == []
    hub = ChangeHub()
    seen: list[ChangeEvent] = []
    unsubscribe = hub.subscribe("u", "INBOX", seen.append)
    hub.publish(ChangeEvent("new", "u", "INBOX"))
    unsubscribe()
    unsubscribe()  # twice is harmless
    hub.publish(ChangeEvent("new", "u", "INBOX"))
    assert len(seen) == 1
    assert hub.subscriber_count() == 0


def test_a_failing_subscriber_does_not_break_delivery(store: Store) -> None:
    acct = store.account("alice")
    acct.ensure(special_use=False)

    def boom(e: ChangeEvent) -> None:
        raise RuntimeError("session went away")

    store.changes.subscribe("alice", "INBOX", boom)
    got = collect(store, "alice", "INBOX")
    acct.folder().deliver(MSG)
    assert [e.kind for e in got] == ["new"]


def test_bridge_into_asyncio_idle() -> None:
    """The IMAP adapter's pattern: call_soon_threadsafe from the delivering thread."""

    async def main(store: Store) -> ChangeEvent:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[ChangeEvent] = asyncio.Queue()
        store.changes.subscribe(
            "alice", "INBOX", lambda e: loop.call_soon_threadsafe(queue.put_nowait, e)
        )
        inbox = store.account("alice").folder()
        await asyncio.to_thread(inbox.deliver, MSG)
        return await asyncio.wait_for(queue.get(), timeout=10)

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d))
        store.account("alice").ensure(special_use=False)
        event = asyncio.run(main(store))
    assert (event.kind, event.folder) == ("new", "INBOX")


def _age(folder_path: os.PathLike[str] | str) -> None:
    old = time.time() - 10
    for sub in ("new", "cur"):
        os.utime(os.path.join(folder_path, sub), (old, old))


def test_state_token_sees_other_processes(store: Store) -> None:
    acct = store.account("alice")
    acct.ensure(special_use=False)
    inbox = acct.folder()
    inbox.deliver(MSG)
    inbox.messages()
    token = inbox.state_token()
    assert isinstance(token, StateToken)
    assert not token.clean  # just changed: mtimes cannot be trusted yet
    assert inbox.changed_since(token)
    _age(inbox.path)
    token = inbox.state_token()
    assert token.clean
    assert not inbox.changed_since(token)
    # another program delivers (no events): the token notices
    other = Store(store.mail_root).account("alice").folder()
    other.deliver(MSG)
    assert inbox.changed_since(token)
    assert len(inbox.messages()) == 2
    _age(inbox.path)
    token = inbox.state_token()
    # a flag change by another program renames within cur/
    other.messages()
    _age(inbox.path)
    token = inbox.state_token()
    os.rename(
        inbox.messages()[0].path,
        inbox.path / "cur" / (inbox.messages()[0].key + ":2,S"),
    )
    assert inbox.changed_since(token)
    acct.create_folder("Gone")
    gone = acct.folder("Gone")
    _age(gone.path)
    t2 = gone.state_token()
    acct.delete_folder("Gone")
    assert gone.changed_since(t2)
