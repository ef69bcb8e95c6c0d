"""mailgw.probe.health: findings per result, exit codes, the Nagios verdict."""

from __future__ import annotations

import pytest

from mailgw.probe.health import (
    SEVERITY,
    Finding,
    Thresholds,
    evaluate,
    exit_code,
    healthy,
    nagios_status,
    worst,
)
from mailgw.probe.model import ProbeResult
from tests.probe.records import report, result, tls, unreachable

TH = Thresholds()


def levels(r: ProbeResult, th: Thresholds = TH) -> dict[str, str]:
    """check -> worst level among that check's findings."""
    out: dict[str, str] = {}
    for f in evaluate(r, th):
        if SEVERITY[f.level] >= SEVERITY[out.get(f.check, "ok")]:
            out[f.check] = f.level
    return out


def test_healthy_result_is_all_ok() -> None:
    r = result()
    findings = evaluate(r, TH)
    assert findings[0].check == "connect" and findings[0].level == "ok"
    assert all(f.level == "ok" for f in findings)
    assert healthy(r, TH)
    assert exit_code(report(r), TH) == 0
    assert nagios_status(report(r), TH)[0] == 0


@pytest.mark.parametrize(
    "state",
    ["refused", "timeout", "closed", "garbage", "rejected", "tls_failed", "dns_failed", "error"],
)
def test_failed_states_are_critical(state: str) -> None:
    r = unreachable(state=state)
    found = evaluate(r, TH)
    assert found[0] == Finding("critical", "connect", found[0].message)
    assert not healthy(r, TH)
    assert nagios_status(report(r), TH)[0] == 2


def test_rejected_banner_named_in_message() -> None:
    r = result(proto="smtp", port=25, state="rejected", banner="421 4.3.2 too busy", tls=None)
    (f,) = evaluate(r, TH)
    assert f.level == "critical" and "421 4.3.2 too busy" in f.message


def test_exit_codes_reachable_unreachable_mixed() -> None:
    assert exit_code(report(unreachable(), unreachable(state="timeout")), TH) == 3
    assert exit_code(report(), TH) == 3  # nothing at all is nothing reachable
    assert exit_code(report(result(), unreachable()), TH) == 1
    assert exit_code(report(result(), result(proto="imaps", port=993)), TH) == 0
    # reachable but unhealthy: 1, not 3
    garbage = result(state="garbage", error="HTTP/1.1 400", tls=None)
    assert exit_code(report(garbage), TH) == 1


@pytest.mark.parametrize(
    ("days", "level"), [(90, "ok"), (21, "ok"), (20, "warning"), (7, "warning"), (6, "critical")]
)
def test_cert_days_thresholds(days: int, level: str) -> None:
    r = result(tls=tls(days))
    assert levels(r)["cert"] == level


def test_cert_expired_chain_and_name() -> None:
    expired = evaluate(result(tls=tls(-3)), TH)
    assert any(f.level == "critical" and "expired 3 day(s) ago" in f.message for f in expired)
    chain = evaluate(result(tls=tls(chain_verified=False, verify_error="self-signed")), TH)
    assert any(f.check == "cert" and "self-signed" in f.message for f in chain)
    assert worst(chain) == "critical"
    name = result(tls=tls(hostname_match=False))
    assert levels(name)["cert"] == "critical"
    # --insecure: chain and name are not judged, expiry still is
    insecure = Thresholds(verify_cert=False)
    assert healthy(result(tls=tls(chain_verified=False, hostname_match=False)), insecure)
    assert levels(result(tls=tls(-1)), insecure)["cert"] == "critical"


def test_cert_findings_even_when_state_failed() -> None:
    r = result(state="tls_failed", error="certificate verify failed", tls=tls(-10))
    checks = {f.check for f in evaluate(r, TH)}
    assert checks == {"connect", "cert"}


def test_starttls_offered_but_broken() -> None:
    r = result(starttls_ok=False, tls=None)
    assert levels(r)["starttls"] == "critical"


def test_require_tls() -> None:
    th = Thresholds(require_tls=True)
    assert levels(result(), th)["require-tls"] == "ok"
    assert levels(result(proto="imaps", port=993), th)["require-tls"] == "ok"
    plain = result(starttls_offered=False, starttls_ok=None, tls=None)
    assert healthy(plain, TH)  # not asked: fine
    assert levels(plain, th)["require-tls"] == "critical"
    assert "not offered" in next(f for f in evaluate(plain, th) if f.check == "require-tls").message


def test_require_auth() -> None:
    assert levels(result(), Thresholds(require_auth="PLAIN"))["require-auth"] == "ok"
    missing = evaluate(result(), Thresholds(require_auth="CRAM-MD5"))
    (f,) = [f for f in missing if f.check == "require-auth"]
    assert f.level == "critical" and "CRAM-MD5" in f.message and "PLAIN LOGIN" in f.message
    # case-insensitive on both sides
    r = result(auth_mechanisms=["plain"])
    assert healthy(r, Thresholds(require_auth="Plain"))


def test_login_outcomes() -> None:
    assert levels(result(login="ok"))["login"] == "ok"
    failed = evaluate(result(login="failed", login_error="NO [AUTHENTICATIONFAILED]"), TH)
    assert any(f.level == "critical" and "AUTHENTICATIONFAILED" in f.message for f in failed)
    assert levels(result(login="skipped"))["login"] == "unknown"
    assert "login" not in levels(result())


def test_time_thresholds() -> None:
    th = Thresholds(warn_time=0.1, crit_time=0.5)
    assert levels(result(timings={"total": 0.05}), th).get("time") is None
    assert levels(result(timings={"total": 0.2}), th)["time"] == "warning"
    assert levels(result(timings={"total": 0.6}), th)["time"] == "critical"
    assert healthy(result(timings={"total": 99.0}), TH)  # no thresholds: never judged


def test_nagios_worst_wins_and_unknown_rank() -> None:
    warn = result(tls=tls(10))
    skipped = result(login="skipped")
    assert nagios_status(report(warn), TH)[0] == 1
    assert nagios_status(report(skipped), TH)[0] == 3
    assert nagios_status(report(warn, skipped), TH)[0] == 3
    assert nagios_status(report(warn, skipped, unreachable()), TH)[0] == 2
    code, line = nagios_status(report(), TH)
    assert code == 3 and line.startswith("PROBE UNKNOWN - ")


def test_threshold_problems() -> None:
    assert Thresholds().problems() == []
    assert Thresholds(warn_days=5, crit_days=7).problems()
    assert Thresholds(warn_time=2.0, crit_time=1.0).problems()
    assert Thresholds(warn_time=0.0).problems()
    assert Thresholds(warn_time=1.0, crit_time=1.0).problems() == []
