"""Password hashes: our schemes, and Dovecot's ``doveadm pw`` agreeing with them."""

from __future__ import annotations

import logging
import shutil
import subprocess

import bcrypt
import pytest

from mailgw.auth.hashing import FAST_ENV, hash_password, split_scheme, verify_password

DOVEADM = shutil.which("doveadm")
needs_doveadm = pytest.mark.skipif(DOVEADM is None, reason="doveadm (dovecot-core) not installed")


def test_hash_is_argon2id_phc() -> None:
    h = hash_password("secret")
    assert h.startswith("{ARGON2ID}$argon2id$v=19$")
    assert verify_password(h, "secret")
    assert not verify_password(h, "Secret")
    assert not verify_password(h, "")


def test_hash_is_salted() -> None:
    assert hash_password("secret") != hash_password("secret")


def test_production_parameters_without_fast_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FAST_ENV)
    h = hash_password("secret")
    assert "$m=65536,t=3,p=1$" in h
    assert verify_password(h, "secret")


def test_fast_parameters() -> None:
    assert "$m=8,t=1,p=1$" in hash_password("secret")


def test_empty_password_is_refused() -> None:
    with pytest.raises(ValueError):
        hash_password("")


def test_non_ascii_password() -> None:
    h = hash_password("pässwörd€")
    assert verify_password(h, "pässwörd€")
    assert not verify_password(h, "passwörd€")


@pytest.mark.parametrize("scheme", ["PLAIN", "CLEAR", "CLEARTEXT", "plain"])
def test_plain_schemes(scheme: str) -> None:
    assert verify_password(f"{{{scheme}}}s3cr:et", "s3cr:et")
    assert not verify_password(f"{{{scheme}}}s3cr:et", "s3cr:e")


@pytest.mark.parametrize("prefix", [b"2b", b"2a", b"2y"])
def test_blf_crypt(prefix: bytes) -> None:
    h = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4, prefix=b"2b"))
    h = b"$" + prefix + h[3:]
    assert verify_password("{BLF-CRYPT}" + h.decode(), "secret")
    assert verify_password("{CRYPT}" + h.decode(), "secret")
    assert not verify_password("{BLF-CRYPT}" + h.decode(), "secreT")


def test_blf_crypt_long_password_uses_72_bytes() -> None:
    pw = "x" * 80
    h = bcrypt.hashpw(pw.encode()[:72], bcrypt.gensalt(rounds=4)).decode()
    assert verify_password("{BLF-CRYPT}" + h, pw)


def test_argon2i_scheme_must_match() -> None:
    h = hash_password("secret").removeprefix("{ARGON2ID}")
    assert not verify_password("{ARGON2I}" + h, "secret")


def test_garbage_hashes_are_false_not_errors() -> None:
    for stored in [
        "{ARGON2ID}$argon2id$garbage",
        "{BLF-CRYPT}$2y$05$short",
        "{BLF-CRYPT}notbcrypt",
        "{ARGON2ID}",
        "",
        "{CRYPT}*",
    ]:
        assert verify_password(stored, "secret") is False


def test_unknown_scheme_logs_without_hash(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mailgw.auth"):
        assert not verify_password("{NTLM}8846F7EAEE8FB117AD06BDD830B7586C", "password")
    assert "NTLM" in caplog.text
    assert "8846F7" not in caplog.text


def test_split_scheme() -> None:
    assert split_scheme("{plain}x") == ("PLAIN", "x")
    assert split_scheme("$2y$05$abc") == ("CRYPT", "$2y$05$abc")


# --- Dovecot compatibility ----------------------------------------------------


def _doveadm(*args: str) -> subprocess.CompletedProcess[str]:
    assert DOVEADM is not None
    return subprocess.run([DOVEADM, "pw", *args], capture_output=True, text=True, timeout=60)


@needs_doveadm
@pytest.mark.parametrize("fast", [True, False])
def test_dovecot_verifies_our_argon2id(monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    if not fast:
        monkeypatch.delenv(FAST_ENV)
    h = hash_password("secret")
    ok = _doveadm("-t", h, "-p", "secret")
    assert ok.returncode == 0, ok.stderr
    assert "(verified)" in ok.stdout
    bad = _doveadm("-t", h, "-p", "wrong")
    assert bad.returncode != 0


@needs_doveadm
@pytest.mark.parametrize("scheme", ["ARGON2ID", "ARGON2I", "BLF-CRYPT", "SHA512-CRYPT", "PLAIN"])
def test_we_verify_dovecot_hashes(scheme: str) -> None:
    made = _doveadm("-s", scheme, "-p", "s3cret pw")
    assert made.returncode == 0, made.stderr
    stored = made.stdout.strip()
    assert split_scheme(stored)[0] == scheme
    assert verify_password(stored, "s3cret pw")
    assert not verify_password(stored, "s3cret pX")


@needs_doveadm
def test_we_verify_dovecot_default_crypt() -> None:
    made = _doveadm("-p", "secret")  # Dovecot 2.3 default: {CRYPT} with bcrypt
    stored = made.stdout.strip()
    assert verify_password(stored, "secret")
    assert not verify_password(stored, "secreT")
