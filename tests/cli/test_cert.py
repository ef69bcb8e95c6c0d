"""``mailgw cert self-signed`` and ``mailgw.certs``: files, extensions, fingerprint."""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

import mailgw.cli.common as common
from mailgw.certs import ensure_self_signed, fingerprint, write_self_signed
from mailgw.cli.main import app
from mailgw.config.schema import Config
from mailgw.errors import UsageError

OPENSSL = shutil.which("openssl")


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    data = tmp_path / "data"
    monkeypatch.setenv("MAILGW_DATA", str(data))
    cfg = Config(data_dir=data, hostname="mail.office.lan", domains=("office.lan",), listeners=())
    monkeypatch.setattr(common, "load_cli_config", lambda ctx: cfg)
    return cfg


def test_cli_self_signed_default_dir(config: Config) -> None:
    runner = CliRunner()
    args = ["cert", "self-signed", "--host", "mail.office.lan", "--host", "192.168.1.5"]
    r = runner.invoke(app, [*args, "--host", "::1"])
    assert r.exit_code == 0, r.output
    tls = config.data_dir / "tls"
    cert_path, key_path = tls / "cert.pem", tls / "key.pem"
    assert str(cert_path) in r.stdout and str(key_path) in r.stdout
    assert fingerprint(cert_path) in r.stdout
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in r.output

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mail.office.lan"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.168.1.5"),
        ipaddress.ip_address("::1"),
    ]
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    key = load_pem_private_key(key_path.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    assert key.public_key() == cert.public_key()
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 825 <= lifetime.days <= 826

    # refuses to overwrite without --force
    before = cert_path.read_bytes()
    r = runner.invoke(app, args)
    assert isinstance(r.exception, UsageError)
    assert cert_path.read_bytes() == before
    r = runner.invoke(app, [*args, "--force", "--days", "30"])
    assert r.exit_code == 0, r.output
    assert cert_path.read_bytes() != before


def test_cli_out_dir_and_host_required(tmp_path: Path, config: Config) -> None:
    runner = CliRunner()
    out = tmp_path / "elsewhere"
    r = runner.invoke(app, ["cert", "self-signed", "--host", "x.lan", "--out-dir", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "cert.pem").is_file()
    assert not (config.data_dir / "tls").exists()
    assert runner.invoke(app, ["cert", "self-signed"]).exit_code == 2
    r = runner.invoke(app, ["cert", "self-signed", "--host", "bad host!", "--out-dir", str(out)])
    assert isinstance(r.exception, UsageError)


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
def test_fingerprint_matches_openssl(tmp_path: Path) -> None:
    cert_path, _ = write_self_signed(tmp_path, ["mail.office.lan"])
    assert OPENSSL is not None
    out = subprocess.run(
        [OPENSSL, "x509", "-in", str(cert_path), "-noout", "-fingerprint", "-sha256"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # "sha256 Fingerprint=AB:CD:..." (OpenSSL 3) or "SHA256 Fingerprint=..."
    assert out.split("=", 1)[1] == fingerprint(cert_path)
    assert len(fingerprint(cert_path).split(":")) == 32


def test_ensure_self_signed_keeps_existing(tmp_path: Path) -> None:
    d = tmp_path / "tls"
    cert_path, key_path = ensure_self_signed(d, ["localhost", "127.0.0.1"])
    first = cert_path.read_bytes()
    assert ensure_self_signed(d, ["other"]) == (cert_path, key_path)
    assert cert_path.read_bytes() == first
    key_path.unlink()  # half a pair is replaced
    ensure_self_signed(d, ["localhost"])
    assert cert_path.read_bytes() != first


def test_certificate_loads_into_ssl_context(tmp_path: Path) -> None:
    cert_path, key_path = write_self_signed(tmp_path, ["localhost", "127.0.0.1"])
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    assert client.cert_store_stats()["x509"] == 1


def _handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext, name: str) -> None:
    """Run a TLS handshake in memory (no sockets); raises what the client raises."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=name)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(10):
        for key, side, out, peer_in in (("c", client, c_out, s_in), ("s", server, s_out, c_in)):
            if not done[key]:
                try:
                    side.do_handshake()
                    done[key] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


@pytest.mark.parametrize("server_name", ["mail.office.lan", "127.0.0.1"])
def test_client_pinning_cert_verifies_each_san(tmp_path: Path, server_name: str) -> None:
    cert_path, key_path = write_self_signed(tmp_path, ["mail.office.lan", "127.0.0.1"])
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_path, key_path)
    client_ctx = ssl.create_default_context(cafile=str(cert_path))
    _handshake(client_ctx, server_ctx, server_name)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(client_ctx, server_ctx, "evil.lan")
