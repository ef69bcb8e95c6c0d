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
* ``certs``: a test CA and a server certificate under ``tmp_path/certs``.
  ``serve_factory({user: password})`` -> a started ``mailgw serve`` (default
  listeners, ``certs``) under ``tmp_path/serve`` with those users; stopped at
  teardown, after printing its log (pytest shows it when the test failed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.e2e_util import CertFiles, ServeProcess, make_certs
from tests.interop.peers import (
    DovecotInstance,
    PeerDaemon,
    PeerUnavailable,
    PostfixInstance,
    peer_workdir,
)

P = TypeVar("P", bound=PeerDaemon)


@pytest.fixture
def peer_dir() -> Iterator[Path]:
    with peer_workdir() as path:
        yield path


def _started(cls: type[P], what: str) -> Iterator[Callable[..., P]]:
    """A factory fixture's body: ``make(*args, **kw)`` -> a started ``cls(*args, **kw)``;
    every instance made is cleaned up at teardown; a missing peer skips the test."""
    made: list[P] = []

    def make(*args: Any, **kwargs: Any) -> P:
        try:
            peer = cls(*args, **kwargs)
        except PeerUnavailable as exc:
            pytest.skip(f"{what} unavailable: {exc}")
        made.append(peer)
        return peer.start()

    try:
        yield make
    finally:
        for peer in reversed(made):
            peer.cleanup()


@pytest.fixture
def dovecot_factory() -> Iterator[Callable[..., DovecotInstance]]:
    yield from _started(DovecotInstance, "Dovecot")


@pytest.fixture
def postfix_factory() -> Iterator[Callable[..., PostfixInstance]]:
    yield from _started(PostfixInstance, "Postfix")


@pytest.fixture
def postfix(postfix_factory: Callable[..., PostfixInstance]) -> PostfixInstance:
    return postfix_factory(users=("alice", "bob"), domain="peer.test")


@pytest.fixture
def postfix_sink(postfix_factory: Callable[..., PostfixInstance]) -> PostfixInstance:
    return postfix_factory(sink=True)


@pytest.fixture
def certs(tmp_path: Path) -> CertFiles:
    return make_certs(tmp_path / "certs")


@pytest.fixture
def serve_factory(tmp_path: Path, certs: CertFiles) -> Iterator[Callable[..., ServeProcess]]:
    with contextlib.ExitStack() as stack:

        def make(users: Mapping[str, str]) -> ServeProcess:
            proc = stack.enter_context(ServeProcess(tmp_path / "serve", certs=certs))
            stack.callback(lambda: print(proc.log()))  # runs before the stop
            for user, password in users.items():
                proc.add_user(user, password)
            return proc

        yield make
