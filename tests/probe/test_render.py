"""mailgw.probe.render: the text table, the JSON document, the Nagios output."""

from __future__ import annotations

import json
import re

from mailgw.probe.health import Thresholds, nagios_status
from mailgw.probe.render import perfdata, render_json, render_text
from tests.probe.records import report, result, tls, unreachable

TH = Thresholds()
RESULT_KEYS = {
    "target", "host", "port", "proto", "state", "error", "address", "banner", "tarpit",
    "implicit_tls", "starttls_offered", "starttls_ok", "tls", "capabilities",
    "capabilities_tls", "auth_mechanisms", "auth_before_tls", "login", "login_error", "smtp",
    "timings",
}  # fmt: skip
# one perfdata item: 'label'=value[UOM];[warn];[crit];[min];[max]
PERF_ITEM = re.compile(r"^('[^'=]+'|[^'= ]+)=(U|-?[0-9.]+)(s|%|B|c)?(;[0-9.:~@-]*){0,4}$")


def test_text_block_per_target_and_summary() -> None:
    smtp = result(proto="smtp", port=25)
    text = render_text(report(result(login="ok"), smtp, unreachable("pop3", 110)), TH)
    blocks = text.split("\n\n")
    assert blocks[0].startswith("127.0.0.1:143/imap  OK")
    for needle in (
        "address:", "timings:", "total 0.123s", "banner:", "TLSv1.3 TLS_AES_256_GCM_SHA384",
        "cert subject:    CN=mail.example.org", "mail.example.org, 127.0.0.1",
        "CN=Example CA", "2030-01-01T00:00:00Z (90 days left)", "host name match yes",
        "chain verified yes", "capabilities:    IMAP4rev1 STARTTLS", "after TLS:",
        "auth:            PLAIN LOGIN", "login:           ok",
    ):  # fmt: skip
        assert needle in blocks[0], needle
    assert "SIZE 10240000 PIPELINING 8BITMIME" in blocks[1]
    assert blocks[2].startswith("127.0.0.1:110/pop3  CRITICAL")
    assert "Connection refused" in blocks[2] and "tls:" not in blocks[2]
    summary = text.splitlines()[-1]
    assert summary.startswith("-- 3 target(s): 2 ok, 1 with problems, 2 reachable")
    assert summary.endswith("(exit 1)")


def test_text_shows_problems_and_mx() -> None:
    rep = report(result(tls=tls(3, hostname_match=False)))
    rep.mx = {"example.org": ["mx1.example.org", "mx2.example.org"]}
    text = render_text(rep, TH)
    assert text.startswith("MX example.org: mx1.example.org, mx2.example.org")
    assert "problem:" in text and "expires in 3 day(s)" in text
    assert "does not match host name" in text
    assert "127.0.0.1:143/imap  CRITICAL" in text


def test_json_document_keys_stable() -> None:
    rep = report(result(), unreachable())
    doc = json.loads(render_json(rep, Thresholds(require_tls=True)))
    assert set(doc) == {"schema", "started", "deadline", "elapsed", "mx", "results", "health"}
    assert doc["schema"] == 1
    for r in doc["results"]:
        assert set(r) == RESULT_KEYS
    assert set(doc["results"][0]["tls"]["cert"]) >= {"subject", "sans", "days_left", "not_after"}
    health = doc["health"]
    assert set(health) == {
        "verdict", "exit_code", "nagios_code", "nagios_status", "thresholds", "results",
    }  # fmt: skip
    assert health["verdict"] == "failed" and health["exit_code"] == 1
    assert health["nagios_code"] == 2 and health["nagios_status"] == "CRITICAL"
    assert health["thresholds"]["require_tls"] is True
    assert [h["target"] for h in health["results"]] == [r["target"] for r in doc["results"]]
    first, second = health["results"]
    assert first["healthy"] is True and first["level"] == "ok"
    assert second["healthy"] is False and second["level"] == "critical"
    assert set(second["findings"][0]) == {"level", "check", "message"}
    # byte-stable for equal input
    assert render_json(rep, Thresholds(require_tls=True)) == render_json(
        rep, Thresholds(require_tls=True)
    )


def test_json_verdicts() -> None:
    assert json.loads(render_json(report(result()), TH))["health"]["verdict"] == "healthy"
    unreach = json.loads(render_json(report(unreachable()), TH))["health"]
    assert unreach["verdict"] == "unreachable" and unreach["exit_code"] == 3


def test_nagios_single_target_line() -> None:
    code, out = nagios_status(report(result()), Thresholds(warn_time=1, crit_time=2.5))
    assert code == 0
    assert out == (
        "PROBE OK - 127.0.0.1:143/imap answered in 0.123s, TLSv1.3, certificate 90 days left"
        " | time=0.123s;1;2.5;0 cert_days=90;21;7;;"
    )


def test_nagios_several_targets_labels_and_long_text() -> None:
    rep = report(result(), result(proto="imaps", port=993, tls=tls(10)), unreachable())
    code, out = nagios_status(rep, TH)
    assert code == 2
    first, *rest = out.splitlines()
    status, perf = first.split(" | ")
    assert status.startswith("PROBE CRITICAL - 2/3 targets with problems: ")
    # critical first in the summary
    assert status.index("127.0.0.1:25/smtp") < status.index("127.0.0.1:993/imaps")
    items = perf.split()
    assert items[0] == "'imap_143_time'=0.123s;;;0"
    assert "'imaps_993_cert_days'=10;21;7;;" in items
    assert "'smtp_25_time'=U;;;0" in items
    assert all(PERF_ITEM.match(i) for i in items), items
    assert rest == [
        "127.0.0.1:143/imap: OK - imap answered in 0.123s",
        "127.0.0.1:993/imaps: WARNING - certificate expires in 10 day(s)",
        "127.0.0.1:25/smtp: CRITICAL - [Errno 111] Connection refused",
    ]
    assert "|" not in "\n".join(rest)


def test_perfdata_labels_carry_host_when_hosts_differ() -> None:
    a = result(proto="smtp", port=25, host="mx1.example.org")
    b = result(proto="smtp", port=25, host="mx2.example.org", tls=None)
    perf = perfdata([a, b], TH).split()
    assert perf[0].startswith("'mx1.example.org_smtp_25_time'=")
    assert perf[-1].startswith("'mx2.example.org_smtp_25_time'=")
    assert len({p.split("=")[0] for p in perf}) == len(perf)


def test_nagios_long_text_capped() -> None:
    many = [result(port=10000 + i) for i in range(15)]
    _, out = nagios_status(report(*many), TH)
    lines = out.splitlines()
    assert len(lines) == 1 + 10 + 1 and lines[-1] == "... 5 more target(s)"
    assert lines[0].startswith("PROBE OK - 15/15 targets OK")
