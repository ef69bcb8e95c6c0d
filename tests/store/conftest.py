from __future__ import annotations

from pathlib import Path

import pytest

from mailgw.store import Account, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "mail")


@pytest.fixture
def acct(store: Store) -> Account:
    a = store.account("alice")
    a.ensure(special_use=False)  # a bare Maildir; tests/store/test_special_use.py covers the rest
    return a
