"""``mailgw user``: through the real Typer app, with a Config built in the test."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import mailgw.cli.common as common
from mailgw.auth.hashing import FAST_ENV
from mailgw.auth.passwd import UserDB
from mailgw.cli.main import app
from mailgw.config.schema import Config
from mailgw.errors import InvalidUserName, PasswordError, UserExists, UserNotFound

SECRET = "Tr0ub4dor&3-unique"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    data = tmp_path / "data"
    monkeypatch.setenv("MAILGW_DATA", str(data))
    monkeypatch.setenv(FAST_ENV, "1")
    monkeypatch.delenv("MAILGW_PASSWORD", raising=False)
    monkeypatch.delenv("MAILGW_CONFIG", raising=False)
    cfg = Config(data_dir=data, hostname="mail.office.lan", domains=("office.lan",), listeners=())
    monkeypatch.setattr(common, "load_cli_config", lambda ctx: cfg)
    return cfg


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def pwfile(tmp_path: Path) -> Path:
    p = tmp_path / "pw"
    p.write_text(SECRET + "\nsecond line ignored\n")
    return p


def invoke(runner: CliRunner, *args: str, **kw: object):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, list(args), **kw)  # type: ignore[arg-type]
    assert SECRET not in result.output
    return result


def test_add_with_password_file(config: Config, runner: CliRunner, pwfile: Path) -> None:
    r = invoke(runner, "user", "add", "Alice", "--password-file", str(pwfile))
    assert r.exit_code == 0, r.output
    assert "alice" in r.output
    db = UserDB(config.passwd_path)
    assert db.users() == ["alice"]
    assert db.verify("alice", SECRET)
    assert stat.S_IMODE(config.passwd_path.stat().st_mode) == 0o600
    for sub in ("cur", "new", "tmp"):
        assert (config.mail_root / "alice" / "Maildir" / sub).is_dir()
    assert SECRET not in config.passwd_path.read_text()


def test_add_with_env(config: Config, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILGW_PASSWORD", SECRET)
    r = invoke(runner, "user", "add", "bob")
    assert r.exit_code == 0, r.output
    assert UserDB(config.passwd_path).verify("bob", SECRET)


def test_add_with_stdin_dash(config: Config, runner: CliRunner) -> None:
    r = invoke(runner, "user", "add", "carol", "--password-file", "-", input=SECRET + "\n")
    assert r.exit_code == 0, r.output
    assert UserDB(config.passwd_path).verify("carol", SECRET)


def test_add_without_password_and_no_tty_fails(config: Config, runner: CliRunner) -> None:
    r = invoke(runner, "user", "add", "dave")
    assert isinstance(r.exception, PasswordError)
    assert not config.passwd_path.exists()


def test_add_twice_and_bad_name(config: Config, runner: CliRunner, pwfile: Path) -> None:
    assert invoke(runner, "user", "add", "alice", "--password-file", str(pwfile)).exit_code == 0
    r = invoke(runner, "user", "add", "ALICE", "--password-file", str(pwfile))
    assert isinstance(r.exception, UserExists)
    r = invoke(runner, "user", "add", "../evil", "--password-file", str(pwfile))
    assert isinstance(r.exception, InvalidUserName)
    assert not (config.data_dir / "evil").exists()


def test_empty_or_missing_password_file(config: Config, runner: CliRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    r = invoke(runner, "user", "add", "eve", "--password-file", str(empty))
    assert isinstance(r.exception, PasswordError)
    r = invoke(runner, "user", "add", "eve", "--password-file", str(tmp_path / "nope"))
    assert isinstance(r.exception, PasswordError)


def test_passwd(config: Config, runner: CliRunner, pwfile: Path, tmp_path: Path) -> None:
    invoke(runner, "user", "add", "alice", "--password-file", str(pwfile))
    new = tmp_path / "new"
    new.write_text("another-" + SECRET)
    r = invoke(runner, "user", "passwd", "alice", "--password-file", str(new))
    assert r.exit_code == 0, r.output
    db = UserDB(config.passwd_path)
    assert db.verify("alice", "another-" + SECRET)
    assert not db.verify("alice", SECRET)
    r = invoke(runner, "user", "passwd", "nobody", "--password-file", str(new))
    assert isinstance(r.exception, UserNotFound)


def test_del_keeps_mail_unless_purge(config: Config, runner: CliRunner, pwfile: Path) -> None:
    for name in ("alice", "bob"):
        invoke(runner, "user", "add", name, "--password-file", str(pwfile))
    home = config.mail_root / "alice"
    r = invoke(runner, "user", "del", "alice", input="n\n")
    assert r.exit_code != 0
    assert UserDB(config.passwd_path).exists("alice")
    r = invoke(runner, "user", "del", "alice", input="y\n")
    assert r.exit_code == 0, r.output
    assert not UserDB(config.passwd_path).exists("alice")
    assert home.is_dir()

    bob_home = config.mail_root / "bob"
    r = invoke(runner, "user", "del", "bob", "--purge", input="n\n")
    assert r.exit_code != 0
    assert bob_home.is_dir()
    r = invoke(runner, "user", "del", "bob", "--purge", "--yes")
    assert r.exit_code == 0, r.output
    assert not bob_home.exists()
    assert home.is_dir()  # alice's kept mail untouched
    r = invoke(runner, "user", "del", "bob", "--yes")
    assert isinstance(r.exception, UserNotFound)


def test_list(config: Config, runner: CliRunner, pwfile: Path) -> None:
    r = invoke(runner, "user", "list", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == []
    for name in ("zed", "alice"):
        invoke(runner, "user", "add", name, "--password-file", str(pwfile))
    r = invoke(runner, "user", "list", "--json")
    assert json.loads(r.stdout) == [
        {"name": "alice", "scheme": "ARGON2ID"},
        {"name": "zed", "scheme": "ARGON2ID"},
    ]
    r = invoke(runner, "user", "list")
    assert r.stdout.split() == ["alice", "ARGON2ID", "zed", "ARGON2ID"]
    assert "$argon2id$" not in r.output


def test_no_password_option_in_argv(config: Config, runner: CliRunner) -> None:
    import typer.main

    cli: Any = typer.main.get_command(app)
    user_group: Any = cli.commands["user"]
    assert set(user_group.commands) == {"add", "passwd", "del", "list"}
    for cmd in user_group.commands.values():
        for param in cmd.params:
            for opt in getattr(param, "opts", []):
                assert opt == "--password-file" or "pass" not in opt.lower(), opt
    r = invoke(runner, "user", "add", "alice", "--password", SECRET)
    assert r.exit_code == 2
    assert not config.passwd_path.exists()


def test_read_password_prompts_twice_on_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("MAILGW_PASSWORD", raising=False)
    monkeypatch.setattr(common.sys, "stdin", Tty())
    answers = iter([SECRET, SECRET])
    monkeypatch.setattr(common.getpass, "getpass", lambda prompt="": next(answers))
    assert common.read_password(None) == SECRET
    answers = iter([SECRET, "different"])
    with pytest.raises(PasswordError, match="do not match"):
        common.read_password(None)
    answers = iter([""])
    with pytest.raises(PasswordError):
        common.read_password(None)


def test_read_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "pw"
    f.write_bytes(b"crlf-pass\r\nnext\n")
    assert common.read_password(f) == "crlf-pass"
    f.write_text("  spaces kept  ")
    assert common.read_password(f) == "  spaces kept  "
    monkeypatch.setenv("MY_PW", "from-env")
    assert common.read_password(None, env_var="MY_PW") == "from-env"
    assert common.read_password(f, env_var="MY_PW") == "  spaces kept  "  # file wins


def test_main_maps_errors_to_exit_codes(
    config: Config, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailgw.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["user", "add", "Bad Name!"])
    assert info.value.code == 2
    assert "invalid user name" in capsys.readouterr().err
