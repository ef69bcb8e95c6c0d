"""The relay client's TLS (STARTTLS, implicit) and AUTH against aiosmtpd with trustme certs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from mailgw.relay.client import (
    DeliveryResult,
    OutMessage,
    RouteAuthError,
    TargetsUnavailable,
    Timeouts,
    deliver,
)
from mailgw.relay.routing import Route, Target
from tests.relay.test_client_support import (
    LOOPBACK,
    PASSWORD,
    USER,
    Recorder,
    authenticator,
    server_tls_context,
    start_aiosmtpd,
)

FAST = Timeouts(connect=5, greeting=5, command=5, data_init=5, data_end=5, quit=2)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


ServerFactory = Callable[..., tuple[Recorder, int]]


@pytest.fixture
def smtpd(free_port: Callable[[], int]) -> Iterator[ServerFactory]:
    controllers = []

    def make(**kwargs: Any) -> tuple[Recorder, int]:
        handler = Recorder()
        port = free_port()
        controllers.append(start_aiosmtpd(handler, port, **kwargs))
        return handler, port

    yield make
    for c in controllers:
        c.stop()


def route(**kwargs: Any) -> Route:
    return Route("isp", **{"hosts": ("unused",), **kwargs})


def send(port: int, rt: Route, host: str = LOOPBACK) -> list[DeliveryResult]:
    msg = OutMessage(
        "T1", "bob@office.lan", ["ok@remote.example"], data=b"Subject: t\r\n\r\nhi\r\n"
    )
    return asyncio.run(deliver([Target(host, port, host)], rt, [msg], timeouts=FAST))


def starttls_server(
    smtpd: ServerFactory, ca: trustme.CA, *names: str, **kw: Any
) -> tuple[Recorder, int]:
    cert = ca.issue_cert(*(names or (LOOPBACK, "localhost")))
    return smtpd(tls_context=server_tls_context(cert), **kw)


def test_starttls_verified_with_ca_file(
    smtpd: ServerFactory, ca: trustme.CA, ca_file: Path
) -> None:
    handler, port = starttls_server(smtpd, ca, require_starttls=True)
    results = send(port, route(ca_file=ca_file))
    assert results[0].all_ok
    assert handler.messages[0].tls


def test_starttls_verified_by_host_name(
    smtpd: ServerFactory, ca: trustme.CA, ca_file: Path
) -> None:
    handler, port = starttls_server(smtpd, ca, "localhost")
    assert send(port, route(ca_file=ca_file), host="localhost")[0].all_ok
    assert handler.messages[0].tls


def test_untrusted_certificate_refused(smtpd: ServerFactory, ca: trustme.CA) -> None:
    handler, port = starttls_server(smtpd, ca)
    with pytest.raises(TargetsUnavailable) as info:
        send(port, route())  # system CAs do not know the test CA
    assert "certificate verification failed" in info.value.reply
    assert info.value.reply.startswith("451 4.4.1")
    assert handler.messages == []


def test_wrong_host_name_refused(smtpd: ServerFactory, ca: trustme.CA, ca_file: Path) -> None:
    handler, port = starttls_server(smtpd, ca, "other.example")
    with pytest.raises(TargetsUnavailable) as info:
        send(port, route(ca_file=ca_file))
    assert "certificate verification failed" in info.value.reply
    assert handler.messages == []


def test_tls_verify_off_accepts_any_certificate(smtpd: ServerFactory, ca: trustme.CA) -> None:
    handler, port = starttls_server(smtpd, ca, "other.example")
    assert send(port, route(tls_verify=False))[0].all_ok
    assert handler.messages[0].tls


def test_tls_required_but_not_offered(smtpd: ServerFactory) -> None:
    handler, port = smtpd()
    with pytest.raises(TargetsUnavailable) as info:
        send(port, route())
    assert "TLS required but not offered" in info.value.reply
    assert handler.messages == []
    # opportunistic: plaintext when not offered
    assert send(port, route(tls_required=False))[0].all_ok
    assert handler.messages[0].tls is False


def test_implicit_tls(smtpd: ServerFactory, ca: trustme.CA, ca_file: Path) -> None:
    cert = ca.issue_cert(LOOPBACK)
    handler, port = smtpd(ssl_context=server_tls_context(cert))
    assert send(port, route(tls="implicit", ca_file=ca_file))[0].all_ok
    assert handler.messages[0].tls


def auth_server(smtpd: ServerFactory, ca: trustme.CA, **kw: Any) -> tuple[Recorder, int]:
    return starttls_server(
        smtpd, ca, authenticator=authenticator, auth_required=True, require_starttls=True, **kw
    )


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_with_password_file(
    smtpd: ServerFactory, ca: trustme.CA, ca_file: Path, tmp_path: Path, mechanism: str
) -> None:
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]
    handler, port = auth_server(smtpd, ca, auth_exclude_mechanism=[other])
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    assert send(port, route(ca_file=ca_file, username=USER, password_file=pw))[0].all_ok
    assert len(handler.messages) == 1


def test_auth_with_password_env(
    smtpd: ServerFactory, ca: trustme.CA, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, port = auth_server(smtpd, ca)
    monkeypatch.setenv("MAILGW_TEST_RELAY_PW", PASSWORD)
    rt = route(ca_file=ca_file, username=USER, password_env="MAILGW_TEST_RELAY_PW")
    assert send(port, rt)[0].all_ok
    assert len(handler.messages) == 1


def test_wrong_password_raises_route_auth_error(
    smtpd: ServerFactory, ca: trustme.CA, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, port = auth_server(smtpd, ca)
    monkeypatch.setenv("MAILGW_TEST_RELAY_PW", "wrong-secret-xyz")
    rt = route(
        ca_file=ca_file, username=USER, password_env="MAILGW_TEST_RELAY_PW", hosts=("a", "b")
    )
    with pytest.raises(RouteAuthError) as info:
        send(port, rt)
    err = info.value
    assert err.route == "isp"
    assert err.reply.startswith("535")
    assert "wrong-secret-xyz" not in str(err) and "wrong-secret-xyz" not in err.reply
    assert handler.messages == []


def test_missing_password_raises_route_auth_error(
    smtpd: ServerFactory, ca: trustme.CA, ca_file: Path, tmp_path: Path
) -> None:
    _, port = auth_server(smtpd, ca)
    with pytest.raises(RouteAuthError) as info:
        send(port, route(ca_file=ca_file, username=USER, password_file=tmp_path / "absent"))
    assert "cannot read password file" in str(info.value)


def test_no_auth_offered_raises_route_auth_error(
    smtpd: ServerFactory, ca: trustme.CA, ca_file: Path, tmp_path: Path
) -> None:
    _, port = starttls_server(smtpd, ca)  # no authenticator: aiosmtpd offers no mechanism
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    with pytest.raises(RouteAuthError):
        send(port, route(ca_file=ca_file, username=USER, password_file=pw))
