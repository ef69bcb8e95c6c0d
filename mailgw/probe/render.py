"""Renderers of a probe report: a text table, the JSON document, the Nagios output.

Theory of operation
-------------------
*Text* is for people: one block per target (state, address, timings, banner,
TLS, certificate, capabilities before and after TLS, AUTH, SMTP extensions of
RFC 5321 4.1.1.1, login, the health findings) and a summary line.

*JSON* is ``ProbeReport.to_json()`` (schema 1, docs/probe-json.md) plus a
``health`` section: the thresholds, per result its findings and level, and
the overall verdict with the exit code of both modes.  ``sort_keys`` keeps the
output byte-stable for equal input.

*Nagios* follows the Monitoring Plugins development guidelines: the first
line is ``PROBE <STATUS> - <text> | <perfdata>``; further lines (long text,
one per target when several, at most ``MAX_LONG_LINES``) follow.  Perfdata
is ``'label'=value[UOM];[warn];[crit];[min];[max]``: ``time`` in seconds
(UOM ``s``) and ``cert_days``; with several targets the labels are prefixed
``<proto>_<port>_`` (and the host, when the hosts differ) and single-quoted.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mailgw.probe.health import (
    EXIT_UNREACHABLE,
    NAGIOS_CODE,
    NAGIOS_NAMES,
    SEVERITY,
    Finding,
    Thresholds,
    evaluate,
    exit_code,
    worst,
)
from mailgw.probe.model import ProbeReport, ProbeResult

MAX_LONG_LINES = 10
MAX_SUMMARY_PROBLEMS = 3
TIMING_ORDER = ("dns", "connect", "banner", "capabilities", "tls", "capabilities_tls", "login")


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def _num(value: float | None) -> str:
    """A perfdata threshold: empty when unset, no trailing zeros."""
    return "" if value is None else f"{value:g}"


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


# --- text ----------------------------------------------------------------------------------------


def _timings(result: ProbeResult) -> str:
    parts = [f"{k} {_secs(result.timings[k])}" for k in TIMING_ORDER if k in result.timings]
    extra = sorted(set(result.timings) - set(TIMING_ORDER) - {"total"})
    parts += [f"{k} {_secs(result.timings[k])}" for k in extra]
    if "total" in result.timings:
        parts.append(f"total {_secs(result.timings['total'])}")
    return ", ".join(parts) or "-"


def _tls_lines(result: ProbeResult) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if result.implicit_tls:
        how = "implicit TLS"
    elif result.starttls_offered is None:
        how = "STARTTLS unknown"
    elif not result.starttls_offered:
        how = "STARTTLS not offered"
    else:
        how = "STARTTLS ok" if result.starttls_ok else "STARTTLS offered, upgrade failed"
    tls = result.tls
    if tls is not None and (tls.version or tls.cipher):
        bits = f" ({tls.bits} bits)" if tls.bits else ""
        how += f": {tls.version or '?'} {tls.cipher or '?'}{bits}"
    rows.append(("tls", how))
    cert = tls.cert if tls is not None else None
    if cert is not None:
        rows.append(("cert subject", cert.subject or "-"))
        rows.append(("cert SANs", ", ".join(cert.sans) or "-"))
        rows.append(("cert issuer", cert.issuer or "-"))
        days = f" ({cert.days_left} days left)" if cert.days_left is not None else ""
        rows.append(("cert expiry", f"{cert.not_after or '-'}{days}"))
        verified = _yes_no(cert.chain_verified)
        if cert.verify_error:
            verified += f" ({cert.verify_error})"
        rows.append(
            (
                "cert checks",
                f"host name match {_yes_no(cert.hostname_match)}, chain verified {verified}, "
                f"self-signed {_yes_no(cert.self_signed)}",
            )
        )
    return rows


def _smtp_line(result: ProbeResult) -> str | None:
    smtp = result.smtp
    if smtp is None:
        return None
    flags = [
        name
        for name, on in (
            ("PIPELINING", smtp.pipelining),
            ("8BITMIME", smtp.eightbitmime),
            ("SMTPUTF8", smtp.smtputf8),
            ("CHUNKING", smtp.chunking),
        )
        if on
    ]
    if smtp.size_limit is not None:
        flags.insert(0, f"SIZE {smtp.size_limit}" if smtp.size_limit else "SIZE (no limit)")
    host = f" (EHLO name {smtp.ehlo_host})" if smtp.ehlo_host else ""
    return (" ".join(flags) or "no extensions") + host


def _block(result: ProbeResult, findings: list[Finding]) -> list[str]:
    level = worst(findings)
    rows: list[tuple[str, str]] = [
        ("state", result.state + (f" ({result.error})" if result.error else "")),
        ("address", result.address or "-"),
        ("timings", _timings(result)),
    ]
    if result.banner is not None:
        banner = result.banner.replace("\n", " / ")
        rows.append(("banner", banner + (" [tarpit: slow greeting]" if result.tarpit else "")))
    if result.reachable:
        rows += _tls_lines(result)
        rows.append(("capabilities", " ".join(result.capabilities) or "-"))
        if result.capabilities_tls:
            rows.append(("after TLS", " ".join(result.capabilities_tls)))
        rows.append(("auth", " ".join(result.auth_mechanisms) or "none"))
        rows.append(("auth before TLS", " ".join(result.auth_before_tls) or "none"))
        smtp = _smtp_line(result)
        if smtp is not None:
            rows.append(("smtp", smtp))
    if result.login is not None:
        why = f" ({result.login_error})" if result.login_error else ""
        rows.append(("login", result.login + why))
    for f in findings:
        if f.level != "ok":
            rows.append(("problem", f"{f.level.upper()} {f.check}: {f.message}"))
    width = max(len(k) for k, _ in rows)
    head = f"{result.target}  {NAGIOS_NAMES[NAGIOS_CODE[level]]}"
    return [head] + [f"  {k + ':':<{width + 1}} {v}" for k, v in rows]


def render_text(report: ProbeReport, thresholds: Thresholds) -> str:
    """The human-readable report: one block per target, then a summary line."""
    lines: list[str] = []
    for domain, hosts in report.mx.items():
        lines.append(f"MX {domain}: {', '.join(hosts) or 'none'}")
    if lines:
        lines.append("")
    levels: list[str] = []
    for result in report.results:
        findings = evaluate(result, thresholds)
        levels.append(worst(findings))
        lines += _block(result, findings)
        lines.append("")
    n = len(report.results)
    ok = levels.count("ok")
    reachable = sum(1 for r in report.results if r.reachable)
    code = exit_code(report, thresholds)
    verdict = {0: "healthy", 1: "some checks failed", EXIT_UNREACHABLE: "nothing reachable"}[code]
    lines.append(
        f"-- {n} target(s): {ok} ok, {n - ok} with problems, {reachable} reachable; "
        f"{report.elapsed:.3f}s of {report.deadline:g}s deadline; {verdict} (exit {code})"
    )
    return "\n".join(lines)


# --- JSON ----------------------------------------------------------------------------------------


def health_json(report: ProbeReport, thresholds: Thresholds) -> dict[str, Any]:
    """The ``health`` section of the JSON document."""
    results = []
    levels: list[Finding] = []
    for r in report.results:
        findings = evaluate(r, thresholds)
        level = worst(findings)
        levels.append(Finding(level, "target", r.target))
        results.append(
            {
                "target": r.target,
                "level": level,
                "healthy": level == "ok",
                "findings": [f.to_json() for f in findings],
            }
        )
    code = exit_code(report, thresholds)
    nagios = NAGIOS_CODE[worst(levels)] if report.results else NAGIOS_CODE["unknown"]
    return {
        "verdict": {0: "healthy", 1: "failed", EXIT_UNREACHABLE: "unreachable"}[code],
        "exit_code": code,
        "nagios_code": nagios,
        "nagios_status": NAGIOS_NAMES[nagios],
        "thresholds": thresholds.to_json(),
        "results": results,
    }


def render_json(report: ProbeReport, thresholds: Thresholds) -> str:
    doc = report.to_json()
    doc["health"] = health_json(report, thresholds)
    return json.dumps(doc, indent=2, sort_keys=True)


# --- Nagios --------------------------------------------------------------------------------------

_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def _prefixes(results: list[ProbeResult]) -> list[str]:
    if len(results) == 1:
        return [""]
    with_host = len({r.host for r in results}) > 1
    out = []
    for r in results:
        base = f"{r.proto}_{r.port}_"
        out.append(_LABEL_UNSAFE.sub("_", f"{r.host}_{base}" if with_host else base))
    return out


def _label(prefix: str, name: str) -> str:
    return f"'{prefix}{name}'" if prefix else name


def perfdata(results: list[ProbeResult], thresholds: Thresholds) -> str:
    """``time=0.123s;warn;crit;0 cert_days=42;21;7;;`` (labelled per target when several)."""
    items: list[str] = []
    for prefix, r in zip(_prefixes(results), results, strict=True):
        total = r.timings.get("total")
        value = "U" if total is None or not r.reachable else f"{total:.3f}s"
        warn, crit = _num(thresholds.warn_time), _num(thresholds.crit_time)
        items.append(f"{_label(prefix, 'time')}={value};{warn};{crit};0")
        cert = r.tls.cert if r.tls is not None else None
        if cert is not None and cert.days_left is not None:
            items.append(
                f"{_label(prefix, 'cert_days')}={cert.days_left};"
                f"{thresholds.warn_days};{thresholds.crit_days};;"
            )
    return " ".join(items)


def _ok_text(results: list[ProbeResult]) -> str:
    times = [r.timings["total"] for r in results if "total" in r.timings]
    days = [
        r.tls.cert.days_left
        for r in results
        if r.tls is not None and r.tls.cert is not None and r.tls.cert.days_left is not None
    ]
    if len(results) == 1:
        r = results[0]
        text = f"{r.target} answered" + (f" in {_secs(times[0])}" if times else "")
        if r.tls is not None and r.tls.version:
            text += f", {r.tls.version}"
    else:
        text = f"{len(results)}/{len(results)} targets OK"
        if times:
            text += f", slowest {_secs(max(times))}"
    if days:
        text += f", certificate {min(days)} days left"
    return text


def nagios_lines(
    report: ProbeReport,
    per: list[tuple[ProbeResult, list[Finding]]],
    code: int,
    thresholds: Thresholds,
) -> str:
    """The whole Nagios output for ``per`` (results with their findings) at ``code``."""
    results = [r for r, _ in per]
    bad = [(r, f) for r, fs in per for f in fs if f.level != "ok"]
    if not bad:
        text = _ok_text(results)
    else:
        bad.sort(key=lambda item: -SEVERITY[item[1].level])
        shown = [f"{r.target}: {f.message}" for r, f in bad[:MAX_SUMMARY_PROBLEMS]]
        failing = len({r.target for r, _ in bad})
        text = f"{failing}/{len(results)} targets with problems: " if len(results) > 1 else ""
        text += "; ".join(shown)
        if len(bad) > MAX_SUMMARY_PROBLEMS:
            text += f" (+{len(bad) - MAX_SUMMARY_PROBLEMS} more)"
    text = text.replace("|", "/").replace("\n", " ")
    lines = [f"PROBE {NAGIOS_NAMES[code]} - {text} | {perfdata(results, thresholds)}"]
    if len(results) > 1:
        for r, fs in per[:MAX_LONG_LINES]:
            level = worst(fs)
            problems = [f.message for f in fs if f.level != "ok"]
            detail = "; ".join(problems) if problems else fs[0].message
            lines.append(
                f"{r.target}: {NAGIOS_NAMES[NAGIOS_CODE[level]]} - {detail}".replace("|", "/")
            )
        if len(per) > MAX_LONG_LINES:
            lines.append(f"... {len(per) - MAX_LONG_LINES} more target(s)")
    return "\n".join(lines)


__all__ = ["health_json", "nagios_lines", "perfdata", "render_json", "render_text"]
