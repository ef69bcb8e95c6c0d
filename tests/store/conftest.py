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
    a.ensure()
    return a
