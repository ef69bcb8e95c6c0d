"""Health verdicts over probe results: findings, exit codes, the Nagios status.

Theory of operation
-------------------
A :class:`~mailgw.probe.model.ProbeResult` is a description ("what the server
offers"); whether that is *healthy* depends on what the operator asked for,
the :class:`Thresholds`.  :func:`evaluate` turns one result into a list of
:class:`Finding` records, each ``ok``, ``warning``, ``critical`` or
``unknown`` for one named check:

* ``connect`` -- the probe's outcome (``model.State``): refused, timeout,
  unresolvable, closed, garbage (not the protocol), rejected (SMTP 421/554
  greeting, RFC 5321 4.2 / 3.8; POP3 ``-ERR``, RFC 1939 4; IMAP ``* BYE``,
  RFC 9051 7.1.5) and TLS failures are all critical.
* ``cert`` -- the server certificate: expired, chain not verified, host name
  not matching (RFC 6125 6) are critical unless ``verify_cert`` is off
  (``--insecure``: expiry still counts); fewer than ``crit_days`` /
  ``warn_days`` days left is critical / warning (as ``check_smtp -D``).
* ``starttls`` -- STARTTLS (RFC 3207), STLS (RFC 2595 4) or STARTTLS (RFC 9051
  6.2.1) was offered but the upgrade failed: critical.
* ``require-tls`` -- neither implicit TLS (RFC 8314 3) nor a working STARTTLS.
* ``require-auth`` -- the mechanism (RFC 4954, RFC 5034, RFC 9051 6.2.2) is not
  offered after TLS (or, without TLS, in the plain session).
* ``login`` -- the login test failed (critical) or could not be done safely
  (``skipped``: unknown, the check asked for did not run).
* ``time`` -- the probe's total time over ``warn_time`` / ``crit_time``.

Exit codes outside Nagios mode (:func:`exit_code`): 0 every target reachable
and healthy, 1 some check failed, 3 nothing reachable (2, usage, is the
CLI's).  Nagios mode (:func:`nagios_status`) follows the Monitoring Plugins
guidelines: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, the worst over every
target (critical outranks unknown, which outranks warning).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from mailgw.probe.model import ProbeReport, ProbeResult

Level = Literal["ok", "warning", "critical", "unknown"]

EXIT_HEALTHY, EXIT_FAILED, EXIT_UNREACHABLE = 0, 1, 3
NAGIOS_OK, NAGIOS_WARNING, NAGIOS_CRITICAL, NAGIOS_UNKNOWN = 0, 1, 2, 3
NAGIOS_NAMES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
NAGIOS_CODE: dict[str, int] = {
    "ok": NAGIOS_OK,
    "warning": NAGIOS_WARNING,
    "critical": NAGIOS_CRITICAL,
    "unknown": NAGIOS_UNKNOWN,
}
#: how bad a level is, for "the worst of": critical > unknown > warning > ok
SEVERITY: dict[str, int] = {"ok": 0, "warning": 1, "unknown": 2, "critical": 3}

_STATE_TEXT: dict[str, str] = {
    "refused": "connection refused",
    "timeout": "timed out",
    "closed": "connection closed by the server",
    "garbage": "the server does not speak the protocol",
    "rejected": "service refused",
    "tls_failed": "TLS handshake failed",
    "dns_failed": "host name does not resolve",
    "error": "probe error",
}


@dataclass(frozen=True)
class Thresholds:
    """What counts as healthy.  Days and seconds; None: no such threshold."""

    warn_days: int = 21
    crit_days: int = 7
    warn_time: float | None = None
    crit_time: float | None = None
    require_tls: bool = False
    require_auth: str | None = None  # a SASL mechanism name, e.g. "PLAIN"
    verify_cert: bool = True  # False with --insecure: chain and host name not judged

    def problems(self) -> list[str]:
        """Contradictory settings (empty when usable)."""
        out: list[str] = []
        if self.warn_days < 0 or self.crit_days < 0:
            out.append("--warn-days and --crit-days must not be negative")
        elif self.crit_days > self.warn_days:
            out.append("--crit-days must not be above --warn-days")
        for name, value in (("--warn-time", self.warn_time), ("--crit-time", self.crit_time)):
            if value is not None and value <= 0:
                out.append(f"{name} must be above 0")
        if (
            self.warn_time is not None
            and self.crit_time is not None
            and self.crit_time < self.warn_time
        ):
            out.append("--crit-time must not be below --warn-time")
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str  # connect, cert, starttls, require-tls, require-auth, login, time
    message: str

    def to_json(self) -> dict[str, str]:
        return {"level": self.level, "check": self.check, "message": self.message}


def _seconds(value: float) -> str:
    return f"{value:.3f}s"


def _state_finding(result: ProbeResult) -> Finding:
    if result.state == "ok":
        total = result.timings.get("total")
        text = f"{result.proto} answered" + (f" in {_seconds(total)}" if total is not None else "")
        return Finding("ok", "connect", text)
    text = _STATE_TEXT.get(result.state, f"state {result.state}")
    detail = result.error
    if result.state == "rejected" and not detail and result.banner:
        detail = result.banner.split("\n", 1)[0]
    if detail and text.split()[-1].lower() in detail.lower():
        return Finding("critical", "connect", detail)  # "[Errno 111] Connection refused"
    return Finding("critical", "connect", f"{text}: {detail}" if detail else text)


def _cert_findings(result: ProbeResult, th: Thresholds) -> list[Finding]:
    cert = result.tls.cert if result.tls is not None else None
    if cert is None:
        return []
    out: list[Finding] = []
    days = cert.days_left
    if days is not None and days < 0:
        out.append(
            Finding(
                "critical", "cert", f"certificate expired {-days} day(s) ago ({cert.not_after})"
            )
        )
    elif days is not None and days < th.crit_days:
        out.append(Finding("critical", "cert", f"certificate expires in {days} day(s)"))
    elif days is not None and days < th.warn_days:
        out.append(Finding("warning", "cert", f"certificate expires in {days} day(s)"))
    if th.verify_cert and cert.chain_verified is False:
        why = f": {cert.verify_error}" if cert.verify_error else ""
        out.append(Finding("critical", "cert", f"certificate chain not verified{why}"))
    if th.verify_cert and cert.hostname_match is False:
        out.append(
            Finding("critical", "cert", f"certificate does not match host name {result.host}")
        )
    if not out:
        left = f", {days} day(s) left" if days is not None else ""
        out.append(Finding("ok", "cert", f"certificate valid{left}"))
    return out


def _tls_up(result: ProbeResult) -> bool:
    return (result.implicit_tls and result.tls is not None) or bool(result.starttls_ok)


def _tls_findings(result: ProbeResult, th: Thresholds) -> list[Finding]:
    out: list[Finding] = []
    if result.starttls_offered and result.starttls_ok is False and result.state != "tls_failed":
        out.append(Finding("critical", "starttls", "STARTTLS offered but the upgrade failed"))
    if th.require_tls and not _tls_up(result):
        if result.starttls_offered:
            why = "STARTTLS failed"
        elif result.implicit_tls:
            why = "no TLS session"
        else:
            why = "STARTTLS not offered"
        out.append(Finding("critical", "require-tls", f"TLS required: {why}"))
    elif th.require_tls:
        out.append(Finding("ok", "require-tls", "TLS available"))
    return out


def _auth_findings(result: ProbeResult, th: Thresholds) -> list[Finding]:
    if th.require_auth is None:
        return []
    mech = th.require_auth.upper()
    offered = [m.upper() for m in result.auth_mechanisms]
    where = "after TLS" if _tls_up(result) else "without TLS"
    if mech in offered:
        return [Finding("ok", "require-auth", f"AUTH {mech} offered {where}")]
    listed = " ".join(offered) if offered else "none"
    return [
        Finding("critical", "require-auth", f"AUTH {mech} not offered {where} (offered: {listed})")
    ]


def _login_findings(result: ProbeResult) -> list[Finding]:
    why = f": {result.login_error}" if result.login_error else ""
    if result.login == "ok":
        return [Finding("ok", "login", "login succeeded")]
    if result.login == "failed":
        return [Finding("critical", "login", f"login failed{why}")]
    if result.login == "skipped":
        return [Finding("unknown", "login", f"login not tested{why}")]
    return []


def _time_findings(result: ProbeResult, th: Thresholds) -> list[Finding]:
    total = result.timings.get("total")
    if total is None:
        return []
    if th.crit_time is not None and total > th.crit_time:
        limit = _seconds(th.crit_time)
        return [Finding("critical", "time", f"took {_seconds(total)} (critical over {limit})")]
    if th.warn_time is not None and total > th.warn_time:
        limit = _seconds(th.warn_time)
        return [Finding("warning", "time", f"took {_seconds(total)} (warning over {limit})")]
    return []


def evaluate(result: ProbeResult, thresholds: Thresholds) -> list[Finding]:
    """Every finding about ``result``, the ``connect`` one first."""
    findings = [_state_finding(result)]
    findings += _cert_findings(result, thresholds)
    if result.state != "ok":
        return findings  # nothing more can be judged on a failed session
    findings += _tls_findings(result, thresholds)
    findings += _auth_findings(result, thresholds)
    findings += _login_findings(result)
    findings += _time_findings(result, thresholds)
    return findings


def worst(findings: list[Finding]) -> Level:
    """The most severe level among ``findings`` (``ok`` when empty)."""
    level: Level = "ok"
    for f in findings:
        if SEVERITY[f.level] > SEVERITY[level]:
            level = f.level
    return level


def healthy(result: ProbeResult, thresholds: Thresholds) -> bool:
    return all(f.level == "ok" for f in evaluate(result, thresholds))


def exit_code(report: ProbeReport, thresholds: Thresholds) -> int:
    """0 every target reachable and healthy, 1 some check failed, 3 nothing reachable."""
    if not any(r.reachable for r in report.results):
        return EXIT_UNREACHABLE
    if all(healthy(r, thresholds) for r in report.results):
        return EXIT_HEALTHY
    return EXIT_FAILED


def nagios_status(report: ProbeReport, thresholds: Thresholds) -> tuple[int, str]:
    """(exit code 0-3, the Monitoring Plugins output: status line, perfdata, long text)."""
    from mailgw.probe.render import nagios_lines

    if not report.results:
        return NAGIOS_UNKNOWN, "PROBE UNKNOWN - no targets probed"
    per = [(r, evaluate(r, thresholds)) for r in report.results]
    level = worst([f for _, fs in per for f in fs])
    code = NAGIOS_CODE[level]
    return code, nagios_lines(report, per, code, thresholds)


__all__ = [
    "EXIT_FAILED",
    "EXIT_HEALTHY",
    "EXIT_UNREACHABLE",
    "NAGIOS_NAMES",
    "Finding",
    "Level",
    "Thresholds",
    "evaluate",
    "exit_code",
    "healthy",
    "nagios_status",
    "worst",
]
