"""deliver_local against the real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgw.delivery.local import deliver_local
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
