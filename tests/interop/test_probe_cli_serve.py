"""``mailgw probe`` (a subprocess) against mailgw's own ``serve``: JSON and Nagios."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_util import (
    IMAP_LISTENER,
    IMAPS_LISTENER,
    CertFiles,
    Listener,
    ServeProcess,
    run_mailgw,
)
from tests.interop.peers import free_port

USER, PASSWORD = "alice", "probe-pass-1"


@pytest.fixture
def serve(tmp_path: Path, certs: CertFiles) -> Iterator[ServeProcess]:
    listeners = (
        IMAP_LISTENER,
        IMAPS_LISTENER,
        Listener("submission", "submission", "starttls"),
        Listener("pop3", "pop3", "starttls"),
    )
    with ServeProcess(tmp_path / "serve", certs=certs, listeners=listeners) as proc:
        proc.add_user(USER, PASSWORD)
        try:
            yield proc
        finally:
            print(proc.log())


def probe(*args: str, password: str = PASSWORD) -> tuple[int, str, str]:
    run = run_mailgw(["probe", *args], env={"MAILGW_PROBE_PASSWORD": password})
    return run.returncode, run.stdout, run.stderr


def test_probe_json_and_nagios_against_serve(serve: ServeProcess, certs: CertFiles) -> None:
    imap = f"127.0.0.1:{serve.port('imap')}/imap"
    targets = [
        imap,
        f"127.0.0.1:{serve.port('imaps')}/imaps",
        f"127.0.0.1:{serve.port('submission')}/submission",
        f"127.0.0.1:{serve.port('pop3')}/pop3",
    ]
    common = ["--ca-file", str(certs.ca_cert), "--user", USER, "--deadline", "20"]
    code, out, err = probe(*targets, *common, "--json", "--require-tls", "--require-auth", "PLAIN")
    assert code == 0, out + err
    doc = json.loads(out)
    assert doc["schema"] == 1 and doc["health"]["verdict"] == "healthy"
    assert [r["target"] for r in doc["results"]] == targets
    for r in doc["results"]:
        assert r["state"] == "ok", r
        assert r["address"] == "127.0.0.1"
        assert r["tls"]["version"].startswith("TLSv1.")
        cert = r["tls"]["cert"]
        assert cert["chain_verified"] is True and cert["hostname_match"] is True
        assert cert["days_left"] > 21
        assert "PLAIN" in r["auth_mechanisms"]
        assert r["login"] == "ok", r
    by_proto = {r["proto"]: r for r in doc["results"]}
    assert by_proto["imap"]["starttls_offered"] is True and by_proto["imap"]["starttls_ok"]
    assert by_proto["imaps"]["implicit_tls"] is True
    assert by_proto["submission"]["smtp"]["ehlo_host"]

    code, out, err = probe(imap, *common, "--nagios", "--warn-time", "15", "--crit-time", "20")
    assert code == 0, out + err
    status, perf = out.splitlines()[0].split(" | ")
    assert status.startswith(f"PROBE OK - {imap} answered in ")
    time_item, days_item = perf.split()
    assert time_item.startswith("time=") and time_item.endswith("s;15;20;0")
    assert days_item.startswith("cert_days=") and days_item.endswith(";21;7;;")

    # a wrong password: CRITICAL (2); outside Nagios mode "some check failed" (1)
    code, out, _ = probe(imap, *common, "--nagios", password="wrong")
    assert code == 2 and out.startswith("PROBE CRITICAL - ") and "login failed" in out
    code, out, _ = probe(imap, *common, password="wrong")
    assert code == 1 and "login:" in out

    # without the CA the chain does not verify: CRITICAL; --insecure accepts it
    code, out, _ = probe(imap, "--nagios")
    assert code == 2 and "chain not verified" in out
    assert probe(imap, "--nagios", "--insecure")[0] == 0

    # a closed port only: nothing reachable (3), Nagios CRITICAL (2)
    closed = f"127.0.0.1:{free_port()}/imap"
    assert probe(closed, "--deadline", "5")[0] == 3
    code, out, _ = probe(closed, "--deadline", "5", "--nagios")
    assert code == 2 and out.startswith("PROBE CRITICAL - ")
