"""``mailgw probe``: what a mail server offers, and whether it is healthy.

Thin: parse the targets (``mailgw.probe.targets``), resolve ``--mx`` domains
(``mailgw.probe.mx``), run every probe concurrently under one global
deadline (``mailgw.probe.runner``), then judge (``mailgw.probe.health``) and
render (``mailgw.probe.render``).  The engine is imported when the command
runs, not when the CLI starts.

Exit codes: 0 every target reachable and healthy, 1 some check failed,
2 usage, 3 nothing reachable.  With ``--nagios`` the Monitoring Plugins codes
instead (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), and every usage error is an
``UNKNOWN`` line with exit 3, even one the option parser finds.

The login password never comes from argv: ``--password-file`` (``-`` for
standard input) or ``$MAILGW_PROBE_PASSWORD``, else a prompt on a terminal.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer import _click  # Typer's vendored Click: the types TyperCommand uses
from typer.core import TyperCommand

from mailgw.errors import MailgwError, NetworkError, UsageError

if TYPE_CHECKING:
    from mailgw.probe.health import Thresholds
    from mailgw.probe.model import ProbeReport

PASSWORD_ENV = "MAILGW_PROBE_PASSWORD"
NAGIOS_UNKNOWN = 3

EPILOG = (
    "Exit codes: 0 every target reachable and healthy; 1 some check failed (unreachable "
    "target, certificate, TLS, AUTH, login or time threshold); 2 usage error; 3 nothing "
    "reachable. With --nagios the Monitoring Plugins codes instead: 0 OK, 1 WARNING, "
    "2 CRITICAL, 3 UNKNOWN (usage errors included)."
)


class _NagiosAwareCommand(TyperCommand):
    """Under ``--nagios``, an option parsing error is ``PROBE UNKNOWN - ...``, exit 3."""

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        nagios = "--nagios" in args
        try:
            return super().parse_args(ctx, args)
        except _click.exceptions.UsageError as exc:
            if not nagios:
                raise
            typer.echo(f"PROBE UNKNOWN - {exc.format_message()}".replace("\n", " "))
            ctx.exit(NAGIOS_UNKNOWN)


def _collect_targets(
    texts: list[str], port: int | None, proto: str | None, targets_file: Path | None
) -> list[Any]:
    from mailgw.probe.targets import parse_target, read_targets_file

    targets: list[Any] = []
    for text in texts:
        try:
            targets += parse_target(text, default_proto=proto, port=port)
        except ValueError as exc:
            raise UsageError(f"bad target {text!r}: {exc}") from None
    if targets_file is not None:  # --port/--proto apply to its bare hosts too
        targets += read_targets_file(targets_file, default_proto=proto, port=port)
    return targets


async def _resolve_mx(
    domains: list[str], port: int | None, proto: str | None, timeout: float
) -> tuple[dict[str, list[str]], list[Any]]:
    """MX hosts of each domain (in preference order) and their targets (SMTP by default)."""
    from mailgw.probe.mx import mx_hosts
    from mailgw.probe.targets import parse_target

    mx: dict[str, list[str]] = {}
    targets: list[Any] = []
    for domain in domains:
        try:
            hosts = await asyncio.wait_for(mx_hosts(domain), timeout)
        except TimeoutError:
            raise NetworkError(f"MX lookup for {domain} timed out") from None
        except MailgwError:
            raise
        except Exception as exc:  # dnspython's exceptions, OSError: the lookup failed
            raise NetworkError(f"MX lookup for {domain} failed: {exc}") from None
        if not hosts:
            raise NetworkError(f"{domain} has no MX hosts")
        mx[domain] = list(hosts)
        for host in hosts:
            targets += parse_target(host, default_proto=proto or "smtp", port=port)
    return mx, targets


def _dedupe(targets: list[Any]) -> list[Any]:
    seen: set[tuple[str, int, str]] = set()
    out = []
    for t in targets:
        key = (t.host, t.port, t.proto)
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


async def _run(
    texts: list[str],
    port: int | None,
    proto: str | None,
    targets_file: Path | None,
    mx_domains: list[str],
    deadline: float,
    option_kwargs: dict[str, Any],
) -> ProbeReport:
    from mailgw.probe.runner import ProbeOptions, run_probes

    start = time.monotonic()
    targets = _collect_targets(texts, port, proto, targets_file)
    mx: dict[str, list[str]] = {}
    if mx_domains:
        mx, mx_targets = await _resolve_mx(mx_domains, port, proto, deadline)
        targets += mx_targets
    targets = _dedupe(targets)
    if not targets:
        raise UsageError("no targets: give HOST[:PORT][/PROTO], --targets-file or --mx DOMAIN")
    left = max(0.5, deadline - (time.monotonic() - start))
    report = await run_probes(targets, ProbeOptions(deadline=left, **option_kwargs))
    report.mx = mx
    report.deadline = deadline
    report.elapsed = time.monotonic() - start
    return report


def _thresholds(
    warn_days: int,
    crit_days: int,
    warn_time: float | None,
    crit_time: float | None,
    require_tls: bool,
    require_auth: str | None,
    insecure: bool,
) -> Thresholds:
    from mailgw.probe.health import Thresholds

    th = Thresholds(
        warn_days=warn_days,
        crit_days=crit_days,
        warn_time=warn_time,
        crit_time=crit_time,
        require_tls=require_tls,
        require_auth=require_auth.upper() if require_auth else None,
        verify_cert=not insecure,
    )
    problems = th.problems()
    if problems:
        raise UsageError("; ".join(problems))
    return th


def probe(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TARGET",
            help=(
                "HOST (every standard port: 25, 587, 465, 110, 995, 143, 993), HOST:PORT, "
                "HOST:PORT/PROTO or HOST/PROTO; IPv6 as [::1]:143/imap."
            ),
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", help="Probe this port only.", min=1, max=65535),
    ] = None,
    proto: Annotated[
        str | None,
        typer.Option(
            "--proto",
            help="Protocol: smtp, submission, smtps, pop3, pop3s, imap, imaps.",
        ),
    ] = None,
    targets_file: Annotated[
        Path | None,
        typer.Option("--targets-file", help="Targets, one a line (# comments).", dir_okay=False),
    ] = None,
    mx: Annotated[
        list[str] | None,
        typer.Option("--mx", metavar="DOMAIN", help="Probe the MX hosts of DOMAIN (SMTP)."),
    ] = None,
    deadline: Annotated[
        float, typer.Option("--deadline", help="Global deadline for the whole run (s).")
    ] = 10.0,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            "--ca-file", help="Verify certificates against these CAs (PEM).", dir_okay=False
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help=(
                "Accept any certificate (chain and host name not judged; expiry still is) and "
                "allow the login test without TLS."
            ),
        ),
    ] = False,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Test a login as this user.")
    ] = None,
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            help=f"The login password: first line of FILE ('-': stdin); else ${PASSWORD_ENV}.",
        ),
    ] = None,
    ehlo: Annotated[
        str | None, typer.Option("--ehlo", metavar="NAME", help="EHLO name (default: FQDN).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON document (schema: docs/probe-json.md).")
    ] = False,
    nagios: Annotated[
        bool, typer.Option("--nagios", help="Monitoring Plugins output, exit 0/1/2/3.")
    ] = False,
    warn_days: Annotated[
        int, typer.Option("--warn-days", help="WARNING when the certificate has fewer days left.")
    ] = 21,
    crit_days: Annotated[
        int, typer.Option("--crit-days", help="CRITICAL when the certificate has fewer days left.")
    ] = 7,
    warn_time: Annotated[
        float | None, typer.Option("--warn-time", help="WARNING when a probe takes longer (s).")
    ] = None,
    crit_time: Annotated[
        float | None, typer.Option("--crit-time", help="CRITICAL when a probe takes longer (s).")
    ] = None,
    require_tls: Annotated[
        bool,
        typer.Option("--require-tls", help="CRITICAL without implicit TLS or working STARTTLS."),
    ] = False,
    require_auth: Annotated[
        str | None,
        typer.Option(
            "--require-auth", metavar="MECH", help="CRITICAL unless AUTH MECH is offered after TLS."
        ),
    ] = None,
) -> None:
    """Probe mail servers: banner, TLS and certificate, capabilities, AUTH, login; health.

    Several targets (and every standard port of a bare HOST) are probed concurrently
    under one global --deadline. The default output is a table; --json prints one
    document; --nagios one Monitoring Plugins status line with perfdata
    ('PROBE OK - ... | time=0.123s;;;0 cert_days=42;21;7;;') for Nagios/Icinga.
    With --user a real login is tested (reported as skipped when the server offers
    no secure way to log in); the password comes from --password-file or
    $MAILGW_PROBE_PASSWORD, never from the command line.
    """
    try:
        th = _thresholds(
            warn_days, crit_days, warn_time, crit_time, require_tls, require_auth, insecure
        )
        code, output = _probe(
            targets or [],
            port,
            proto,
            targets_file,
            mx or [],
            deadline,
            ca_file,
            insecure,
            user,
            password_file,
            ehlo,
            as_json,
            nagios,
            th,
        )
    except MailgwError as exc:
        if not nagios:
            raise
        typer.echo(f"PROBE UNKNOWN - {exc}".replace("\n", " "))
        raise typer.Exit(NAGIOS_UNKNOWN) from None
    typer.echo(output)
    raise typer.Exit(code)


def _probe(
    texts: list[str],
    port: int | None,
    proto: str | None,
    targets_file: Path | None,
    mx_domains: list[str],
    deadline: float,
    ca_file: Path | None,
    insecure: bool,
    user: str | None,
    password_file: Path | None,
    ehlo: str | None,
    as_json: bool,
    nagios: bool,
    th: Thresholds,
) -> tuple[int, str]:
    """(exit code, output) of one run; usage problems raise ``UsageError``."""
    from mailgw.probe.model import STANDARD_PORTS

    if as_json and nagios:
        raise UsageError("--json and --nagios exclude each other")
    if proto is not None and proto not in STANDARD_PORTS:
        raise UsageError(f"unknown --proto {proto!r}: one of {', '.join(STANDARD_PORTS)}")
    if not deadline > 0:
        raise UsageError("--deadline must be above 0")
    if password_file is not None and user is None:
        raise UsageError("--password-file needs --user")
    if ca_file is not None and not ca_file.is_file():
        raise UsageError(f"--ca-file {ca_file}: no such file")
    kwargs: dict[str, Any] = {"ca_file": ca_file, "insecure": insecure}
    if user is not None:
        from mailgw.cli.common import read_password

        kwargs["user"] = user
        kwargs["password"] = read_password(password_file, env_var=PASSWORD_ENV, confirm=False)
    if ehlo is not None:
        kwargs["ehlo_name"] = ehlo
    try:
        report = asyncio.run(_run(texts, port, proto, targets_file, mx_domains, deadline, kwargs))
    except ImportError as exc:  # pragma: no cover - the engine ships with this command
        raise MailgwError(f"the probe engine is not available: {exc}") from None

    from mailgw.probe import health, render

    if nagios:
        return health.nagios_status(report, th)
    code = health.exit_code(report, th)
    if as_json:
        return code, render.render_json(report, th)
    return code, render.render_text(report, th)


def register(app: Any) -> None:
    """Add ``mailgw probe`` to the application."""
    app.command("probe", cls=_NagiosAwareCommand, epilog=EPILOG)(probe)


__all__ = ["EPILOG", "PASSWORD_ENV", "probe", "register"]
