"""UserDB: the Dovecot passwd-file, read, rewritten and preserved."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mailgw.auth.passwd import UserDB, validate_username
from mailgw.errors import AuthError, InvalidUserName, UserExists, UserNotFound

FOREIGN = (
    "# managed by hand, keep me\n"
    "\n"
    "bob:{PLAIN}bobpw:1000:1000:Bob B:/home/bob:/bin/false:userdb_quota_rule=*:storage=1G\n"
    "Carol:{PLAIN}x::::::\n"
    "dave@example.com:{PLAIN}y::::::\n"
    ":skipped by dovecot\n"
    "   \n"
    "erin:{BLF-CRYPT}$2y$05$cX8yPmsJ20z1A1fGp5gczunWN.IcVnsc9CRjiGRBgY/ZJjhkW4PTK\n"
    "frank\x3a\n"
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "users.passwd"


def test_missing_file_is_empty_and_add_creates_it(path: Path) -> None:
    db = UserDB(path)
    assert db.users() == []
    db.add("Alice", "secret")
    assert path.read_text().startswith("alice:{ARGON2ID}$argon2id$")
    assert path.read_text().endswith("::::::\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert db.users() == ["alice"]
    assert db.verify("alice", "secret")
    assert db.verify("ALICE", "secret")
    assert not db.verify("alice", "wrong")
    assert db.scheme("alice") == "ARGON2ID"
    assert not list(path.parent.glob(".users.passwd.tmp*"))


def test_round_trip_preserves_foreign_lines(path: Path) -> None:
    path.parent.mkdir()
    path.write_text(FOREIGN)
    db = UserDB(path)
    assert db.users() == ["bob", "erin", "frank"]
    assert db.verify("bob", "bobpw")
    assert db.verify("erin", "secret")
    assert not db.verify("carol", "x")  # "Carol" is not a mailgw name: ignored
    assert not db.verify("frank", "")

    db.add("alice", "pw1")
    db.set_password("bob", "newpw")
    db.delete("erin")
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == "# managed by hand, keep me"
    assert lines[1] == ""
    assert lines[2].startswith("bob:{ARGON2ID}")
    assert lines[2].endswith(":1000:1000:Bob B:/home/bob:/bin/false:userdb_quota_rule=*:storage=1G")
    assert "Carol:{PLAIN}x::::::" in lines
    assert "dave@example.com:{PLAIN}y::::::" in lines
    assert ":skipped by dovecot" in lines
    assert "   " in lines
    assert "frank:" in lines
    assert not any(line.startswith("erin:") for line in lines)
    assert lines[-1].startswith("alice:{ARGON2ID}")
    assert db.verify("bob", "newpw")
    assert not db.verify("bob", "bobpw")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_untouched_rewrite_is_byte_identical(path: Path) -> None:
    path.parent.mkdir()
    path.write_text(FOREIGN + "zed:{PLAIN}z")  # no final newline
    db = UserDB(path)
    db.add("alice", "pw")
    db.delete("alice")
    assert path.read_text() == FOREIGN + "zed:{PLAIN}z\n"


def test_errors(path: Path) -> None:
    db = UserDB(path)
    db.add("alice", "pw")
    with pytest.raises(UserExists):
        db.add("ALICE", "pw")
    with pytest.raises(UserNotFound):
        db.set_password("nobody", "pw")
    with pytest.raises(UserNotFound):
        db.delete("nobody")
    with pytest.raises(InvalidUserName):
        db.add("../etc", "pw")


@pytest.mark.parametrize(
    "name", ["", "-a", "a-", ".a", "a.", "a b", "a/b", "a@b", "x" * 65, "é", "a:b", "a\nb"]
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidUserName):
        validate_username(name)


@pytest.mark.parametrize("name", ["a", "a1", "a.b", "john_doe", "x-y", "x" * 64, "A.B"])
def test_valid_names(name: str) -> None:
    assert validate_username(name) == name.lower()


@pytest.mark.parametrize(
    ("content", "lineno"),
    [
        ("# ok\nalice:{PLAIN}x\nno-colon-here-{PLAIN}hunter2\n", 3),
        ("alice:{PLAIN}hunter2\nalice:{PLAIN}hunter2\n", 2),
        ("ok:{PLAIN}a\nbad:\0{PLAIN}hunter2\n", 2),
    ],
)
def test_unparsable_line_names_file_and_line_not_hash(
    path: Path, content: str, lineno: int
) -> None:
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(AuthError) as info:
        UserDB(path).users()
    assert f"{path}:{lineno}:" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_invalid_utf8_line(path: Path) -> None:
    path.parent.mkdir()
    path.write_bytes(b"a:{PLAIN}x\nb:{PLAIN}\xff\xfe\n")
    with pytest.raises(AuthError, match=r":2: "):
        UserDB(path).users()


def test_reload_only_when_changed(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = UserDB(path)
    db.add("alice", "pw")
    reads = 0
    real_read = UserDB._read

    def counting_read(self: UserDB) -> None:
        nonlocal reads
        if self is db:
            reads += 1
        real_read(self)

    monkeypatch.setattr(UserDB, "_read", counting_read)
    db.reload()
    db.users()
    db.exists("alice")
    assert reads == 0
    # another process (the CLI) changes the file
    other = UserDB(path)
    other.add("bob", "pw")
    assert db.users() == ["alice", "bob"]
    assert reads == 1
    path.unlink()
    assert db.users() == []


def test_two_instances_do_not_lose_updates(path: Path) -> None:
    a, b = UserDB(path), UserDB(path)
    a.users()
    b.users()
    a.add("alice", "pw")
    b.add("bob", "pw")  # b re-reads under the lock before writing
    assert UserDB(path).users() == ["alice", "bob"]


def test_rename_is_atomic_new_inode(path: Path) -> None:
    db = UserDB(path)
    db.add("alice", "pw")
    ino = os.stat(path).st_ino
    db.set_password("alice", "pw2")
    assert os.stat(path).st_ino != ino
