"""``mailgw send``: option table, message preparation, exit codes, ``env -i``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailgw.relay import sendmail
from mailgw.relay.sendmail import (
    EX_CANTCREAT,
    EX_CONFIG,
    EX_OK,
    EX_TEMPFAIL,
    EX_USAGE,
    SendError,
    SendOptions,
    parse_args,
    prepare_message,
    split_global,
)
from mailgw.relay.spool import Spool

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["a@x.example"], {"recipients": ["a@x.example"]}),
        (["-t"], {"extract": True}),
        (["-ti"], {"extract": True, "ignore_dots": True}),
        (["-oi", "-t"], {"extract": True, "ignore_dots": True}),
        (["-i"], {"ignore_dots": True}),
        (["-fbob@x.example"], {"sender": "bob@x.example"}),
        (["-f", "bob@x.example"], {"sender": "bob@x.example"}),
        (["-f", "<>"], {"sender": "<>"}),
        (["-r", "bob@x.example"], {"sender": "bob@x.example"}),
        (["-F", "Jo Doe", "a@x.example"], {"full_name": "Jo Doe", "recipients": ["a@x.example"]}),
        (["-FJo"], {"full_name": "Jo"}),
        (["-C", "/etc/m.yaml"], {"config": "/etc/m.yaml"}),
        (["--config=/etc/m.yaml"], {"config": "/etc/m.yaml"}),
        (["a@x.example", "-t", "b@y.example"], {"recipients": ["a@x.example", "b@y.example"]}),
        (["--", "-odd@x.example"], {"recipients": ["-odd@x.example"]}),
        (["-v"], {"verbose": True}),
        (["--help"], {"help": True}),
    ],
)
def test_parse_table(argv: list[str], expect: dict[str, object]) -> None:
    opts = parse_args(argv)
    for key, value in expect.items():
        assert getattr(opts, key) == value, key


@pytest.mark.parametrize(
    "argv",
    [
        ["-oem"], ["-odb"], ["-odi"], ["-oee"], ["-o", "X"], ["-bm"], ["-em"], ["-ep"],
        ["-B", "8BITMIME"], ["-B8BITMIME"], ["-N", "never"], ["-Nsuccess,failure"],
        ["-R", "hdrs"], ["-V", "envid"], ["-X", "/tmp/log"], ["-L", "tag"], ["-h", "3"],
        ["-Am"], ["-d0.1"], ["-G"], ["-m"], ["-n"], ["-U"], ["-Ooption=1"], ["-v"],
    ],
)  # fmt: skip
def test_ignored_flags(argv: list[str]) -> None:
    opts = parse_args([*argv, "a@x.example"])
    assert opts.recipients == ["a@x.example"]
    assert not opts.extract and not opts.ignore_dots and opts.sender is None


@pytest.mark.parametrize("argv", [["-bs"], ["-bp"], ["-q"], ["-q30m"], ["-Z"], ["--nope"], ["-f"]])
def test_refused_flags(argv: list[str]) -> None:
    with pytest.raises(SendError) as info:
        parse_args(argv)
    assert info.value.code == EX_USAGE


def _prep(raw: bytes, **opts: object) -> tuple[bytes, list[str]]:
    options = SendOptions(**opts)  # type: ignore[arg-type]
    prepared = prepare_message(
        raw, options, sender="me@h.example", uid=1000, hostname="h.example",
        queue_id="0123456789ABCDEF", now=1_700_000_000.0,
    )  # fmt: skip
    return prepared.data, prepared.recipients


def test_dot_line_ends_input_without_i() -> None:
    data, _ = _prep(b"Subject: s\n\none\n.\ntwo\n")
    assert data.endswith(b"\r\n\r\none\r\n")
    assert b"two" not in data


def test_dot_line_kept_with_i() -> None:
    data, _ = _prep(b"Subject: s\n\none\n.\ntwo\n", ignore_dots=True)
    assert data.endswith(b"\r\n\r\none\r\n.\r\ntwo\r\n")


def test_crlf_conversion_and_added_headers() -> None:
    data, _ = _prep(b"Subject: s\nX-A: 1\r\n  folded\n\nbody\rmore\nlast", full_name="Jo Doe")
    head, body = data.split(b"\r\n\r\n", 1)
    assert body == b"body\r\nmore\r\nlast\r\n"
    assert b"\n" not in data.replace(b"\r\n", b"")
    lines = head.split(b"\r\n")
    assert lines[0] == b"Received: by h.example (mailgw send, from userid 1000)"
    assert lines[1].startswith(b"\tid 0123456789ABCDEF; ")
    assert b"X-A: 1\r\n  folded" in head
    assert b"\r\nFrom: Jo Doe <me@h.example>" in head
    assert b"\r\nDate: " in head and b"\r\nMessage-ID: <0123456789ABCDEF." in head


def test_existing_headers_kept() -> None:
    raw = b"From: a@b.example\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <x@y>\n\nb\n"
    data, _ = _prep(raw)
    assert data.count(b"From:") == 1 and data.count(b"Date:") == 1
    assert data.count(b"Message-ID:") == 1


def test_t_reads_recipients_and_removes_bcc() -> None:
    raw = (
        b"To: Ann <ann@x.example>, bob@y.example\n"
        b'Cc: "C, D" <cd@z.example>\n'
        b"Bcc: hidden@w.example,\n  other@w.example\n"
        b"Subject: s\n\nbody\n"
    )
    data, rcpts = _prep(raw, extract=True)
    assert rcpts == [
        "ann@x.example", "bob@y.example", "cd@z.example", "hidden@w.example", "other@w.example"
    ]  # fmt: skip
    assert b"Bcc" not in data and b"hidden" not in data and b"other@w" not in data
    assert b"\r\nSubject: s\r\n" in data


def test_resent_headers_win_with_t() -> None:
    raw = b"To: old@x.example\nResent-To: new@x.example\nResent-Bcc: b@x.example\n\nb\n"
    data, rcpts = _prep(raw, extract=True)
    assert rcpts == ["new@x.example", "b@x.example"]
    assert b"Resent-Bcc" not in data


def test_no_header_block_and_mbox_from_line() -> None:
    data, _ = _prep(b"From someone Mon Jan  1 00:00:00 2024\nthis is not a header\n")
    _head, body = data.split(b"\r\n\r\n", 1)
    assert body == b"this is not a header\r\n"
    assert b"From someone" not in data


def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("MAILGW_DATA", str(data))
    monkeypatch.delenv("MAILGW_CONFIG", raising=False)
    return data / "queue"


def _run(argv: list[str], raw: bytes) -> tuple[int, str]:
    err = io.StringIO()
    code = sendmail.run(argv, stdin=io.BytesIO(raw), stdout=io.StringIO(), stderr=err)
    return code, err.getvalue()


def test_run_queues_with_bare_user_and_null_sender(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    qdir = _env(tmp_path, monkeypatch)
    code, err = _run(["-f", "<>", "alice", "Bob@Example.COM", "alice@localhost"], b"hi\n")
    assert (code, err) == (EX_OK, "")
    [entry] = Spool(qdir).entries()
    assert entry.sender == "" and entry.source == "send"
    assert [r.address for r in entry.recipients] == ["alice@localhost", "Bob@example.com"]


def test_run_without_recipients_is_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    qdir = _env(tmp_path, monkeypatch)
    code, err = _run(["-t"], b"Subject: none\n\nx\n")
    assert code == EX_USAGE and "no recipients" in err
    assert not (qdir / "meta").exists() or os.listdir(qdir / "meta") == []


def test_run_bad_config_and_unwritable_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env(tmp_path, monkeypatch)
    code, err = _run(["-C", str(tmp_path / "missing.yaml"), "a@x.example"], b"x\n")
    assert code == EX_CONFIG and "missing.yaml" in err
    blocker = tmp_path / "blocker"
    blocker.write_text("file")
    monkeypatch.setenv("MAILGW_DATA", str(blocker))
    code, err = _run(["a@x.example"], b"x\n")
    assert code == EX_CANTCREAT
    assert str(blocker / "queue") in err and "Not a directory" in err
    assert err.count("\n") == 1  # one line


def test_run_full_disk_is_tempfail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from mailgw.relay import spool as spool_mod

    qdir = _env(tmp_path, monkeypatch)

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_mod.os, "write", full)
    code, err = _run(["a@x.example"], b"x\n")
    assert code == EX_TEMPFAIL and "No space left on device" in err
    monkeypatch.undo()
    assert os.listdir(qdir / "meta") == [] and os.listdir(qdir / "msg") == []


def test_split_global() -> None:
    assert split_global(["send", "-t"]) == (None, ["-t"])
    assert split_global(["-c", "f.yaml", "-v", "send", "a"]) == ("f.yaml", ["a"])
    assert split_global(["--config=f.yaml", "send"]) == ("f.yaml", [])
    assert split_global(["queue", "send"]) is None
    assert split_global(["user", "add", "send"]) is None


def test_send_under_env_i(tmp_path: Path) -> None:
    """Cron-like: no HOME, no USER, minimal PATH; config from MAILGW_DATA defaults."""
    data = tmp_path / "data"
    env = {"PATH": "/usr/bin:/bin", "MAILGW_DATA": str(data), "PYTHONPATH": str(REPO)}
    raw = b"Subject: cron\nTo: ops@x.example\nBcc: boss@x.example\n\nreport\n.\nnot sent\n"
    proc = subprocess.run(
        ["/usr/bin/env", "-i", *[f"{k}={v}" for k, v in env.items()],
         sys.executable, "-m", "mailgw", "send", "-t", "-v"],
        input=raw, capture_output=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert b"queued as" in proc.stderr
    [entry] = Spool(data / "queue").entries()
    assert [r.address for r in entry.recipients] == ["ops@x.example", "boss@x.example"]
    body = Spool(data / "queue").message_path(entry.id).read_bytes()
    assert b"boss" not in body and b"not sent" not in body and body.endswith(b"report\r\n")


def test_send_under_env_i_unwritable(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("file")
    proc = subprocess.run(
        ["/usr/bin/env", "-i", f"MAILGW_DATA={blocker}", f"PYTHONPATH={REPO}",
         sys.executable, "-m", "mailgw", "send", "a@x.example"],
        input=b"x\n", capture_output=True, check=False,
    )  # fmt: skip
    assert proc.returncode == EX_CANTCREAT
    assert proc.stderr.decode().startswith("mailgw send: cannot ")
    assert str(blocker) in proc.stderr.decode()
