"""``mailgw serve`` as a real process: users, signals, certificates, exit codes.

Each test starts its own server (listeners on port 0, a tmp data directory,
a trustme certificate) and drives it with the standard library's clients.
Passwords go to ``mailgw user`` through ``$MAILGW_PASSWORD`` only, and no
password may ever show up in the server's output.
"""

from __future__ import annotations

import contextlib
import poplib
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_util import (
    DOMAIN,
    LOOPBACK,
    CertFiles,
    Listener,
    ServeProcess,
    install_cert,
    listening_socket,
    make_certs,
    make_message,
    pop3_fetch_all,
    pop3_login,
    run_mailgw,
    smtp_send,
    trace_of,
)

PASSWORDS = ("carol-Pw-1st!x", "carol-Pw-2nd!y", "dave-Pw-secret%z", "wrong-Pw-guess#q")
RELOADED = "reloaded users and certificate"


@pytest.fixture
def certs(tmp_path: Path) -> CertFiles:
    return make_certs(tmp_path / "certs", "a")


@pytest.fixture
def serve(tmp_path: Path, certs: CertFiles) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path / "serve", certs=certs, verbose=True) as proc:
        yield proc
        print(proc.log())  # shown by pytest when the test failed


def assert_no_password(text: str) -> None:
    for pw in PASSWORDS:
        assert pw not in text, f"a password appears in the server output: {pw!r}"


def stop_clean(proc: ServeProcess) -> None:
    rc = proc.stop()
    log = proc.log()
    assert rc == 0, log
    assert "stopped" in proc.stderr(), log
    assert_no_password(proc.all_logs())


def test_user_added_while_running_receives_mail_and_logs_in(
    serve: ServeProcess, certs: CertFiles
) -> None:
    serve.add_user("carol", PASSWORDS[0])
    sent = make_message("hello carol", b"first line\r\nsecond line\r\n", to=f"carol@{DOMAIN}")
    smtp_send(serve.port("smtp"), sent, rcpts=[f"carol@{DOMAIN}"])

    pop = pop3_login(serve.port("pop3"), "carol", PASSWORDS[0], certs.client_context())
    try:
        assert isinstance(pop.sock, ssl.SSLSocket)
        messages = pop3_fetch_all(pop)
    finally:
        pop.quit()
    assert len(messages) == 1
    [stored] = messages.values()
    trace = trace_of(stored, sent)
    assert b"Received:" in trace
    stop_clean(serve)


def test_sigterm_exits_zero_and_says_stopped(serve: ServeProcess) -> None:
    assert serve.running()
    stop_clean(serve)


def test_sigterm_lets_a_data_transaction_in_flight_finish(
    serve: ServeProcess, certs: CertFiles
) -> None:
    serve.add_user("carol", PASSWORDS[0])
    body = b"".join(b"line %04d of a message in flight\r\n" % i for i in range(200))
    sent = make_message("in flight", body, to=f"carol@{DOMAIN}")
    with socket.create_connection((LOOPBACK, serve.port("smtp")), timeout=30) as sock:
        rfile = sock.makefile("rb")

        def reply() -> bytes:
            while True:
                line = rfile.readline()
                assert line, "connection closed"
                if line[3:4] != b"-":
                    return line

        assert reply().startswith(b"220")
        for cmd, code in (
            (b"EHLO client.test", b"250"),
            (b"MAIL FROM:<sender@remote.test>", b"250"),
            (f"RCPT TO:<carol@{DOMAIN}>".encode(), b"250"),
            (b"DATA", b"354"),
        ):
            sock.sendall(cmd + b"\r\n")
            assert reply().startswith(code), cmd
        half = len(sent) // 2
        sock.sendall(sent[:half])
        serve.signal(signal.SIGTERM)
        serve.wait_refusing("smtp")  # the signal was handled: listeners are closed
        assert serve.running()
        sock.sendall(sent[half:] + b".\r\n")
        final = reply()
        assert final.startswith(b"250"), final
    rc = serve.stop()
    assert rc == 0, serve.log()
    [stored] = [
        p.read_bytes() for sub in ("new", "cur") for p in (serve.maildir("carol") / sub).iterdir()
    ]
    trace_of(stored, sent)
    assert_no_password(serve.all_logs())


def _peer_der(pop: poplib.POP3) -> bytes:
    assert isinstance(pop.sock, ssl.SSLSocket)
    der = pop.sock.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_sighup_replaces_certificate_without_dropping_connections(
    serve: ServeProcess, certs: CertFiles, tmp_path: Path
) -> None:
    serve.add_user("carol", PASSWORDS[0])
    smtp_send(serve.port("smtp"), make_message("one", b"one\r\n"), rcpts=[f"carol@{DOMAIN}"])

    old = pop3_login(serve.port("pop3"), "carol", PASSWORDS[0], certs.client_context())
    try:
        assert _peer_der(old) == certs.leaf_der
        new_certs = make_certs(tmp_path / "certs-b", "b")
        install_cert(new_certs, serve.cert_path, serve.key_path)
        serve.signal(signal.SIGHUP)
        serve.wait_for_log(RELOADED)

        # the session logged in before the HUP keeps working
        assert old.stat()[0] == 1
        assert old.noop().startswith(b"+OK")
        _, lines, _ = old.retr(1)
        assert b"one" in lines

        # a new STLS handshake presents the new certificate ...
        new = poplib.POP3(LOOPBACK, serve.port("pop3"), timeout=30)
        try:
            new.stls(new_certs.client_context())
            assert _peer_der(new) == new_certs.leaf_der
        finally:
            new.close()
        # ... which a client trusting only the old CA rejects
        stale = poplib.POP3(LOOPBACK, serve.port("pop3"), timeout=30)
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                stale.stls(certs.client_context())
        finally:
            with contextlib.suppress(OSError):  # the failed handshake closed the socket
                stale.close()
        assert old.quit().startswith(b"+OK")
    finally:
        old.close()
    stop_clean(serve)


def test_sighup_after_user_passwd_new_password_works(serve: ServeProcess, certs: CertFiles) -> None:
    ctx = certs.client_context()
    serve.add_user("carol", PASSWORDS[0])
    pop3_login(serve.port("pop3"), "carol", PASSWORDS[0], ctx).quit()

    serve.passwd("carol", PASSWORDS[1])
    serve.signal(signal.SIGHUP)
    serve.wait_for_log(RELOADED)

    pop3_login(serve.port("pop3"), "carol", PASSWORDS[1], ctx).quit()
    for wrong in (PASSWORDS[0], PASSWORDS[3]):
        with pytest.raises(poplib.error_proto):
            pop3_login(serve.port("pop3"), "carol", wrong, ctx)
    # SMTP AUTH on submission sees the new password too
    serve.add_user("dave", PASSWORDS[2])
    smtp_send(
        serve.port("submission"),
        make_message("from dave", b"hi\r\n", sender=f"dave@{DOMAIN}", to=f"carol@{DOMAIN}"),
        sender=f"dave@{DOMAIN}",
        rcpts=[f"carol@{DOMAIN}"],
        starttls=ctx,
        login=("dave", PASSWORDS[2]),
    )
    stop_clean(serve)


def test_bad_config_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "domains: [example.org]\n"
        f"data_dir: {tmp_path / 'data'}\n"
        "listners:\n"  # line 3: a typo
        "  - {name: smtp, protocol: smtp, address: 127.0.0.1, port: 0}\n"
    )
    proc = run_mailgw(["--config", str(config), "serve"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{config}:3" in proc.stderr, proc.stderr
    assert "listeners" in proc.stderr  # the suggestion
    assert "listening:" not in proc.stdout


def test_port_in_use_exits_3(tmp_path: Path) -> None:
    with listening_socket() as taken:
        proc = ServeProcess(
            tmp_path / "serve",
            listeners=(Listener("pop3", "pop3"), Listener("smtp", "smtp", port=taken)),
        )
        config = proc.write_config()
        result = run_mailgw(["--config", str(config), "serve"])
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"{taken}" in result.stderr, result.stderr
    assert "in use" in result.stderr, result.stderr


def test_send_to_a_local_user_is_delivered_by_serve_without_a_relay_section(
    serve: ServeProcess,
) -> None:
    """``mailgw send`` only writes the spool; serve's runner delivers local mail from it."""
    serve.add_user("erin", "erin-Pw-local")
    r = run_mailgw(
        ["--config", str(serve.config_path), "send", f"erin@{DOMAIN}"],
        input="Subject: from cron\n\nnightly report\n",
    )
    assert r.returncode == 0, r.stderr
    inbox = serve.maildir("erin") / "new"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(inbox.glob("*")):
        time.sleep(0.05)
    bodies = [p.read_bytes() for p in inbox.glob("*")]
    assert len(bodies) == 1, bodies
    assert bodies[0].endswith(b"nightly report\r\n")
    assert list((serve.data / "queue" / "meta").glob("*.json")) == []
    stop_clean(serve)
