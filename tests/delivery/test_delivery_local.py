"""deliver_local against the real store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mailgw.delivery.local import LocalDelivery, deliver_local
from mailgw.errors import StoreError
from mailgw.store import Store

MSG = b"Subject: hi\r\nFrom: x@y\r\n\r\nbody line\r\n.leading dot kept\r\n"
RECEIVED = "Received: from c ([127.0.0.1])\r\n\tby mx (mailgw) with ESMTP id 1; date"


def test_deliver_to_several_users(tmp_path: Path) -> None:
    store = Store(tmp_path / "mail")
    store.account("alice").ensure()  # bob's Maildir does not exist yet
    keys = deliver_local(
        store,
        ["alice", "bob", "alice"],
        MSG,
        envelope_from="sender@example.net",
        original_rcpt={"alice": "team@example.org", "bob": "bob@example.org"},
        received=RECEIVED,
    )
    assert len(keys) == 2
    for user, rcpt in (("alice", "team@example.org"), ("bob", "bob@example.org")):
        folder = store.account(user).folder("INBOX")
        msgs = folder.messages()
        assert len(msgs) == 1
        raw = folder.read(msgs[0])
        assert raw == (
            b"Return-Path: <sender@example.net>\r\n"
            + f"Delivered-To: {rcpt}\r\n".encode()
            + RECEIVED.encode()
            + b"\r\n"
            + MSG
        )
    assert (tmp_path / "mail" / "bob" / "Maildir" / "new").is_dir()


def test_null_sender(tmp_path: Path) -> None:
    store = Store(tmp_path / "mail")
    deliver_local(store, ["alice"], MSG, envelope_from="<>", original_rcpt={}, received=RECEIVED)
    folder = store.account("alice").folder("INBOX")
    raw = folder.read(folder.messages()[0])
    assert raw.startswith(b"Return-Path: <>\r\nDelivered-To: alice\r\n")


def test_store_failure_propagates(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    root.mkdir()
    (root / "alice").write_text("not a directory")
    with pytest.raises((StoreError, OSError)):
        deliver_local(
            Store(root), ["alice"], MSG, envelope_from="a@b", original_rcpt={}, received=RECEIVED
        )


class CountingStore:
    """A real Store that counts account() lookups."""

    def __init__(self, root: Path) -> None:
        self.real = Store(root)
        self.lookups = 0

    def account(self, user: str):  # type: ignore[no-untyped-def]
        self.lookups += 1
        return self.real.account(user)


def test_local_delivery_keeps_the_inbox(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "mail")
    delivery = LocalDelivery(store)
    for _ in range(3):
        delivery.deliver(["alice"], MSG, envelope_from="a@b", original_rcpt={}, received=RECEIVED)
    assert store.lookups == 1
    assert len(store.real.account("alice").folder("INBOX").messages()) == 3


def test_local_delivery_recreates_a_removed_maildir(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "mail")
    delivery = LocalDelivery(store)
    kwargs = {"envelope_from": "a@b", "original_rcpt": {}, "received": RECEIVED}
    delivery.deliver(["alice"], MSG, **kwargs)  # type: ignore[arg-type]
    shutil.rmtree(tmp_path / "mail" / "alice")
    (key,) = delivery.deliver(["alice"], MSG, **kwargs)  # type: ignore[arg-type]
    assert store.lookups == 2
    msgs = store.real.account("alice").folder("INBOX").messages()
    assert [m.key for m in msgs] == [key]


def test_local_delivery_does_not_retry_a_real_failure(tmp_path: Path) -> None:
    calls: list[bytes] = []

    class FailingFolder:
        def exists(self) -> bool:  # the folder still exists: the failure is real
            return True

        def deliver(self, data: bytes) -> str:
            calls.append(data)
            if len(calls) > 1:
                raise StoreError("disk full")
            return "key"

    class OneAccount:
        def ensure(self) -> None:
            pass

        def folder(self, name: str = "INBOX") -> FailingFolder:
            return FailingFolder()

    class FakeStore:
        lookups = 0

        def account(self, user: str) -> OneAccount:
            FakeStore.lookups += 1
            return OneAccount()

    delivery = LocalDelivery(FakeStore())
    kwargs = {"envelope_from": "a@b", "original_rcpt": {}, "received": RECEIVED}
    assert delivery.deliver(["alice"], MSG, **kwargs) == ["key"]  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="disk full"):
        delivery.deliver(["alice"], MSG, **kwargs)  # type: ignore[arg-type]
    assert len(calls) == 2  # written once per message, never a second time
    assert FakeStore.lookups == 1
