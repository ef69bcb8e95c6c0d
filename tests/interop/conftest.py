"""Fixtures around the private peers of ``tests/interop/peers.py``.

* ``peer_dir``: a fresh directory (0755, outside pytest's 0700 tmp tree) for data
  a peer must reach as the ``mail`` user; removed after the test.
* ``dovecot_factory(data_dir, passwd_file, **kw)`` -> a started
  :class:`DovecotInstance`; ``postfix_factory(**kw)`` -> a started
  :class:`PostfixInstance`.  Both stop (and clean up) every instance at teardown
  and skip the test, with the reason, when the peer is not installed (a failure
  under ``CI=true``, see ``tests/conftest.py``).
* ``postfix``: virtual mode, users ``alice`` and ``bob`` at ``peer.test``.
  ``postfix_sink``: sink mode, everything lands in ``postfix_sink.maildir()``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.peers import (
    DovecotInstance,
    PeerUnavailable,
    PostfixInstance,
    make_peer_dir,
)


@pytest.fixture
def peer_dir() -> Iterator[Path]:
    path = make_peer_dir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dovecot_factory() -> Iterator[Callable[..., DovecotInstance]]:
    started: list[DovecotInstance] = []

    def make(data_dir: Path, passwd_file: Path, **kwargs: Any) -> DovecotInstance:
        try:
            dc = DovecotInstance(data_dir, passwd_file, **kwargs)
        except PeerUnavailable as exc:
            pytest.skip(f"Dovecot unavailable: {exc}")
        started.append(dc)
        return dc.start()

    try:
        yield make
    finally:
        for dc in reversed(started):
            dc.cleanup()


@pytest.fixture
def postfix_factory() -> Iterator[Callable[..., PostfixInstance]]:
    started: list[PostfixInstance] = []

    def make(**kwargs: Any) -> PostfixInstance:
        try:
            pf = PostfixInstance(**kwargs)
        except PeerUnavailable as exc:
            pytest.skip(f"Postfix unavailable: {exc}")
        started.append(pf)
        return pf.start()

    try:
        yield make
    finally:
        for pf in reversed(started):
            pf.cleanup()


@pytest.fixture
def postfix(postfix_factory: Callable[..., PostfixInstance]) -> PostfixInstance:
    return postfix_factory(users=("alice", "bob"), domain="peer.test")


@pytest.fixture
def postfix_sink(postfix_factory: Callable[..., PostfixInstance]) -> PostfixInstance:
    return postfix_factory(sink=True)
