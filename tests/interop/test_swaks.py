"""Debian's swaks submits through our submission listener (a real, independent client).

* STARTTLS with certificate verification against the test CA, then AUTH PLAIN
  or AUTH LOGIN: the message lands in the recipient's Maildir, byte for byte
  after our trace headers.
* A wrong password: swaks fails in AUTH (exit 28) and nothing is delivered.
* No TLS on an untrusted submission listener: AUTH is not offered, so swaks
  cannot authenticate (exit 28) and nothing is delivered.

The password reaches swaks through ``$SWAKS_OPT_auth_password`` (swaks reads
options from the environment), so it is not in argv.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e_util import (
    DOMAIN,
    LOOPBACK,
    CertFiles,
    ServeProcess,
    maildir_files,
    make_message,
    require_tool,
    trace_of,
)

pytestmark = pytest.mark.interop

SWAKS = "/usr/bin/swaks"
SENDER, SENDER_PW = "dave", "dave-swaks-Pw!1"
RCPT = "carol"
SWAKS_EXIT_AUTH = 28  # swaks(1) EXIT CODES: error in AUTH transaction


@pytest.fixture
def serve(serve_factory: Callable[..., ServeProcess]) -> ServeProcess:
    require_tool(SWAKS, "swaks (and libnet-ssleay-perl for --tls)")
    return serve_factory({SENDER: SENDER_PW, RCPT: "carol-unused-Pw!2"})


def swaks(
    serve: ServeProcess,
    certs: CertFiles,
    data: Path,
    *extra: str,
    password: str = SENDER_PW,
) -> subprocess.CompletedProcess[str]:
    args = [
        SWAKS,
        "--server",
        f"{LOOPBACK}:{serve.port('submission')}",
        "--ehlo",
        "swaks.test",
        "--from",
        f"{SENDER}@{DOMAIN}",
        "--to",
        f"{RCPT}@{DOMAIN}",
        "--auth-user",
        SENDER,
        "--data",
        f"@{data}",
        "--timeout",
        "30",
        *extra,
    ]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(data.parent), "SWAKS_OPT_auth_password": password}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    assert password not in " ".join(args)
    return proc


def write_message(tmp_path: Path, subject: str) -> tuple[Path, bytes]:
    sent = make_message(
        subject,
        b"Hello from swaks.\r\n.a line starting with a dot\r\nbye\r\n",
        sender=f"{SENDER}@{DOMAIN}",
        to=f"{RCPT}@{DOMAIN}",
        message_id=f"<{subject.replace(' ', '-')}@swaks.test>",
    )
    path = tmp_path / f"{subject.replace(' ', '-')}.eml"
    path.write_bytes(sent.removesuffix(b"\r\n"))  # swaks adds the last CRLF itself
    return path, sent


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_swaks_starttls_auth_delivers(
    serve: ServeProcess, certs: CertFiles, tmp_path: Path, mechanism: str
) -> None:
    data, sent = write_message(tmp_path, f"swaks {mechanism}")
    tls = ["--tls", "--tls-verify", "--tls-ca-path", str(certs.ca_cert)]
    proc = swaks(serve, certs, data, *tls, "--auth", mechanism)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"AUTH {mechanism}" in proc.stdout
    files = maildir_files(serve.maildir(RCPT))
    assert len(files) == 1, files
    stored = files[0].read_bytes()
    trace = trace_of(stored, sent)
    assert b"with ESMTPSA" in trace  # RFC 3848: TLS and AUTH
    assert serve.stop() == 0
    assert SENDER_PW not in serve.all_logs()


def test_swaks_wrong_password_is_refused(
    serve: ServeProcess, certs: CertFiles, tmp_path: Path
) -> None:
    data, _ = write_message(tmp_path, "swaks wrong")
    tls = ["--tls", "--tls-verify", "--tls-ca-path", str(certs.ca_cert)]
    wrong = "not-the-Pw-of-dave"
    proc = swaks(serve, certs, data, *tls, "--auth", "PLAIN", password=wrong)
    assert proc.returncode == SWAKS_EXIT_AUTH, proc.stdout + proc.stderr
    assert "<~  535" in proc.stdout or "<~* 535" in proc.stdout, proc.stdout
    assert maildir_files(serve.maildir(RCPT)) == []
    assert serve.stop() == 0
    assert wrong not in serve.all_logs()


def test_swaks_without_tls_cannot_auth_on_untrusted_submission(
    serve: ServeProcess, certs: CertFiles, tmp_path: Path
) -> None:
    data, _ = write_message(tmp_path, "swaks plaintext")
    proc = swaks(serve, certs, data, "--auth", "PLAIN")
    assert proc.returncode == SWAKS_EXIT_AUTH, proc.stdout + proc.stderr
    ehlo = proc.stdout.split("-> EHLO swaks.test", 1)[1].split(" -> ", 1)[0]
    assert "AUTH" not in ehlo, ehlo  # not offered without TLS
    assert "STARTTLS" in ehlo
    assert "Host did not advertise authentication" in proc.stdout + proc.stderr
    assert maildir_files(serve.maildir(RCPT)) == []
    assert serve.stop() == 0
