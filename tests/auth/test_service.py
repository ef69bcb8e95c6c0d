"""Authenticator: login normalisation, limiter use, authzid, logging, event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest

from mailgw.auth.limiter import AuthLimiter
from mailgw.auth.passwd import UserDB
from mailgw.auth.service import Authenticator, normalize_login

DOMAINS = ("office.lan", "Example.COM.")


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.calls.append(delay)


@pytest.fixture
def userdb(tmp_path: Path) -> UserDB:
    db = UserDB(tmp_path / "users.passwd")
    db.add("alice", "correct horse")
    return db


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def auth(userdb: UserDB, sleep: FakeSleep) -> Authenticator:
    return Authenticator(userdb, AuthLimiter(1.0, 30.0, 900, sleep=sleep), DOMAINS)


@pytest.mark.parametrize(
    ("login", "expected"),
    [
        ("alice", "alice"),
        ("ALICE", "alice"),
        ("alice@office.lan", "alice"),
        ("Alice@OFFICE.LAN", "alice"),
        ("alice@example.com", "alice"),
        ("alice@other.org", None),
        ("alice@", None),
        ("@office.lan", None),
        ("a b", None),
        ("", None),
        ("x@y@office.lan", None),
    ],
)
def test_normalize_login(login: str, expected: str | None) -> None:
    assert normalize_login(login, DOMAINS) == expected


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_success_and_failure(auth: Authenticator, sleep: FakeSleep) -> None:
    assert run(auth.authenticate("alice", "correct horse", "192.0.2.1")) == "alice"
    assert run(auth.authenticate("Alice@office.lan", "correct horse", "192.0.2.1")) == "alice"
    assert sleep.calls == []
    assert run(auth.authenticate("alice", "wrong", "192.0.2.1")) is None
    assert run(auth.authenticate("nobody", "wrong", "192.0.2.1")) is None
    assert run(auth.authenticate("alice@other.org", "correct horse", "192.0.2.1")) is None
    assert sleep.calls == [1.0, 2.0, 4.0]
    assert run(auth.authenticate("alice", "correct horse", "192.0.2.1")) == "alice"
    assert auth.limiter.failures("192.0.2.1") == 0


def test_authzid(auth: Authenticator, sleep: FakeSleep) -> None:
    assert run(auth.authenticate("alice", "correct horse", "::1", authzid="alice")) == "alice"
    assert (
        run(auth.authenticate("alice", "correct horse", "::1", authzid="alice@office.lan"))
        == "alice"
    )
    assert run(auth.authenticate("alice", "correct horse", "::1", authzid="bob")) is None
    assert sleep.calls == [1.0]


def test_verify_runs_off_the_event_loop(
    auth: Authenticator, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    real = auth.userdb.verify

    def spy(user: str, password: str) -> bool:
        threads.append(threading.get_ident())
        return real(user, password)

    monkeypatch.setattr(auth.userdb, "verify", spy)

    async def go() -> str | None:
        loop_thread = threading.get_ident()
        result = await auth.authenticate("alice", "correct horse", "192.0.2.1")
        assert threads and threads[0] != loop_thread
        return result

    assert run(go()) == "alice"


def test_log_lines_never_hold_password(
    auth: Authenticator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="mailgw.auth"):
        run(auth.authenticate("alice", "correct horse", "192.0.2.1"))
        run(auth.authenticate("alice", "hunter2-wrong", "192.0.2.9"))
        run(auth.authenticate("evil\r\nforged", "hunter3", "192.0.2.9"))
    assert "alice from 192.0.2.1: ok" in caplog.text
    assert "'alice' from 192.0.2.9: failed" in caplog.text
    assert "correct horse" not in caplog.text
    assert "hunter" not in caplog.text
    assert "\r\nforged" not in caplog.text  # repr'd
    assert len(caplog.records) == 3


def test_broken_userdb_is_logged_not_raised(
    tmp_path: Path, sleep: FakeSleep, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "users.passwd"
    path.write_text("garbage line {PLAIN}hunter2\n")
    auth = Authenticator(UserDB(path), AuthLimiter(1.0, 30.0, 900, sleep=sleep), DOMAINS)
    with caplog.at_level(logging.ERROR, logger="mailgw.auth"):
        assert run(auth.authenticate("alice", "x", "192.0.2.1")) is None
    assert f"{path}:1" in caplog.text
    assert "hunter2" not in caplog.text
    assert sleep.calls == []
