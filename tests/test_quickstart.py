"""README's quick start, tried as a new user would: fresh virtualenv, temp dir.

The commands run here are the ones README.md shows; the first test keeps
the two in step.
"""

from __future__ import annotations

import os
import poplib
import re
import signal
import smtplib
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVE_CMD = (
    "python3 -m venv .venv && .venv/bin/python -m pip install -q . && .venv/bin/mailgw serve"
)
USER_CMD = ".venv/bin/mailgw user add alice"
TEST_CMD = (
    "python3 -m venv .venv && .venv/bin/python -m pip install -q -e '.[test]' "
    "&& .venv/bin/python -m pytest"
)


def _quick_start_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_readme_quick_start_has_the_two_commands() -> None:
    blocks = _quick_start_blocks()
    assert SERVE_CMD in blocks
    assert USER_CMD in blocks
    assert TEST_CMD in blocks
    ci = (ROOT / ".ci" / "run").read_text()
    assert TEST_CMD in ci, ".ci/run must call exactly README's test command"


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_quick_start_flow(tmp_path: Path) -> None:
    venv_dir = tmp_path / ".venv"
    venv.create(venv_dir, with_pip=True)
    py = venv_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(ROOT)], check=True, timeout=600)
    mailgw = str(venv_dir / "bin" / "mailgw")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGW_")}
    env["MAILGW_ARGON2_FAST"] = "1"
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([mailgw, "serve"], cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        out = tmp_path / "serve.log"
        _wait_for(lambda: out.read_text().count("listening:") >= 3, 60, "serve to listen")
        text = out.read_text()
        assert "127.0.0.1:2525" in text and "127.0.0.1:2110" in text
        assert "user add" in text
        assert (tmp_path / "mailgw-data").is_dir()

        uenv = dict(env, MAILGW_PASSWORD="s3cret-pw")
        r = subprocess.run(
            [mailgw, "user", "add", "alice"], cwd=tmp_path, env=uenv, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        assert "s3cret-pw" not in r.stdout + r.stderr
        # the running server sees the new user without a restart
        body = (
            b"From: bob@example.com\r\nTo: alice@localhost\r\nSubject: hello\r\n"
            b"Message-ID: <quick@example.com>\r\n\r\nHello Alice,\r\n.leading dot\r\n"
        )
        with smtplib.SMTP("127.0.0.1", 2525, timeout=30) as s:
            s.sendmail("bob@example.com", ["alice@localhost"], body)
        pop = poplib.POP3("127.0.0.1", 2110, timeout=30)
        try:
            pop.user("alice")
            pop.pass_("s3cret-pw")
            _resp, lines, _octets = pop.retr(1)
        finally:
            pop.quit()
        got = b"\r\n".join(lines) + b"\r\n"
        assert got.endswith(body)
        assert got.startswith(b"Return-Path: <bob@example.com>\r\n")
        assert "s3cret-pw" not in out.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        log.close()
    assert rc == 0, (tmp_path / "serve.log").read_text()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
