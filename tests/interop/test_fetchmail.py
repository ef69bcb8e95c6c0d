"""Debian's fetchmail retrieves from our POP3 listener over STLS.

fetchmail reads a fetchmailrc (mode 0600, in a tmp HOME: the password is not
in argv), upgrades with STLS (``sslproto 'tls1.2+'`` without ``ssl``),
verifies our certificate against the test CA (``sslcertck`` +
``sslcertfile``) for the name ``localhost`` (``via 127.0.0.1``), and hands
each message to an MDA that writes it to a file of its own.

Asserts: the bytes delivered are the bytes sent (with our trace headers; the
MDA sees LF line ends, as fetchmail gives them), ``nokeep`` makes fetchmail
delete them and our UPDATE state removes them from the Maildir, and a second
run finds nothing (fetchmail exit 1, "no mail").
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e_util import (
    DOMAIN,
    CertFiles,
    ServeProcess,
    maildir_files,
    make_message,
    require_tool,
    smtp_send,
    trace_of,
)

pytestmark = pytest.mark.interop

FETCHMAIL = "/usr/bin/fetchmail"
USER, PASSWORD = "carol", "carol-fetch-Pw!3"
FETCHMAIL_NOMAIL = 1  # fetchmail(1) EXIT CODES: there was no mail


@pytest.fixture
def serve(serve_factory: Callable[..., ServeProcess]) -> ServeProcess:
    require_tool(FETCHMAIL, "fetchmail")
    return serve_factory({USER: PASSWORD})


def fetchmail_home(tmp_path: Path, port: int, certs: CertFiles) -> tuple[Path, Path, Path]:
    """(HOME, fetchmailrc, the MDA's output directory)."""
    home = tmp_path / "home"
    out = tmp_path / "delivered"
    home.mkdir()
    out.mkdir()
    mda = home / "mda.sh"
    mda.write_text(f'#!/bin/sh\nn=$(ls "{out}" | wc -l)\nexec cat > "{out}/msg-$n.eml"\n')
    mda.chmod(0o700)
    local = pwd.getpwuid(os.geteuid()).pw_name
    rc = home / ".fetchmailrc"
    rc.write_text(
        "set no syslog\nset invisible\n"
        f"poll localhost via 127.0.0.1 protocol POP3 port {port} timeout 30\n"
        f'  user "{USER}" there with password "{PASSWORD}" is "{local}" here\n'
        f"  sslproto 'tls1.2+' sslcommonname localhost sslcertck sslcertfile \"{certs.ca_cert}\"\n"
        f'  mda "{mda}"\n'
        "  nokeep fetchall no rewrite\n"
    )
    rc.chmod(0o600)
    return home, rc, out


def run_fetchmail(home: Path, rc: Path) -> subprocess.CompletedProcess[str]:
    args = [FETCHMAIL, "--fetchmailrc", str(rc), "--pidfile", str(home / "fetchmail.pid"), "-v"]
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)


def test_fetchmail_stls_retrieves_and_deletes(
    serve: ServeProcess, certs: CertFiles, tmp_path: Path
) -> None:
    sent = [
        make_message(
            f"fetch {i}",
            b"line one\r\n.line with a leading dot\r\n" + b"x" * (100 * i) + b"\r\n",
            to=f"{USER}@{DOMAIN}",
            message_id=f"<fetch-{i}@fetchmail.test>",
        )
        for i in range(3)
    ]
    for data in sent:
        smtp_send(serve.port("smtp"), data, rcpts=[f"{USER}@{DOMAIN}"])
    stored = {p.read_bytes() for p in maildir_files(serve.maildir(USER))}
    assert len(stored) == 3

    home, rc, out = fetchmail_home(tmp_path, serve.port("pop3"), certs)
    first = run_fetchmail(home, rc)
    transcript = first.stdout + first.stderr
    assert first.returncode == 0, transcript
    assert "STLS" in transcript, transcript
    assert PASSWORD not in transcript  # fetchmail -v masks PASS

    fetched = [p.read_bytes() for p in sorted(out.iterdir())]
    assert len(fetched) == 3, transcript
    # the MDA gets LF line ends; otherwise byte for byte what we stored
    assert sorted(fetched) == sorted(s.replace(b"\r\n", b"\n") for s in stored)
    for data in sent:
        [match] = [s for s in stored if s.endswith(data)]
        trace_of(match, data)

    # nokeep: fetchmail sent DELE + QUIT, our UPDATE removed the files
    assert maildir_files(serve.maildir(USER)) == []

    second = run_fetchmail(home, rc)
    assert second.returncode == FETCHMAIL_NOMAIL, second.stdout + second.stderr
    assert len(list(out.iterdir())) == 3
    assert serve.stop() == 0
    assert PASSWORD not in serve.all_logs()
