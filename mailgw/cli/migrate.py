"""``mailgw migrate``: copy mailboxes between IMAP, POP3, Maildir and mbox, resumably.

Thin: parse SOURCE/DEST (``mailgw.migrate.url``) or the ``--batch`` CSV
(``mailgw.migrate.batch``), read passwords (file, environment, prompt; never
argv), turn the options into ``MigrateOptions``, run the engine on one event
loop, print the report (``mailgw.migrate.report``) and exit with its code.
Everything heavy is imported inside :func:`migrate`, so ``mailgw --help``
stays fast.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailgw.errors import PasswordError, UsageError

if TYPE_CHECKING:
    from datetime import datetime

    from mailgw.migrate.batch import AccountJob
    from mailgw.migrate.model import MigrateOptions
    from mailgw.migrate.url import EndpointSpec

SRC_PASSWORD_ENV = "MAILGW_SRC_PASSWORD"
DST_PASSWORD_ENV = "MAILGW_DST_PASSWORD"

HELP = """Copy mail from SOURCE to DEST, or for every account of --batch FILE.

Endpoints: imap://USER@HOST[:PORT] (STARTTLS when offered), imaps://USER@HOST[:PORT],
pop3://USER@HOST[:PORT] (STLS when offered), pop3s://USER@HOST[:PORT], maildir:PATH
and mbox:PATH (a file or a directory of mbox files). POP3 is a source only. Write an
'@' in a user name as %40 (imap://alice%40example.com@mail.example.com).

Passwords never come from the command line: --src-password-file and
--dst-password-file (first line; - is standard input), else $MAILGW_SRC_PASSWORD and
$MAILGW_DST_PASSWORD, else a prompt on a terminal.

Runs are resumable and incremental: a state file per source/destination pair
(default $XDG_STATE_HOME/mailgw/migrate/, or --state FILE) records what was copied,
so running the same command again copies only new messages and syncs changed flags.
A message already at the destination (found by content) is not copied twice.

Without -q and on a terminal, progress bars show messages, bytes, rate and ETA per
folder. The report lists per folder: messages in the source, copied, skipped as
already present, failed, flags synced, and a verdict; --report-json FILE writes
it as JSON.

\b
Examples:
  mailgw migrate --dry-run imaps://alice@old.example.com maildir:~/Maildir
  mailgw migrate --src-password-file ~/.old-pw imaps://alice@old.example.com \\
      imap://alice@mail.office.lan --exclude '^Junk' --map 'Sent Items=Sent'
  mailgw migrate pop3s://bob@pop.example.com mbox:/srv/backup/bob.mbox
  mailgw migrate --batch accounts.csv --report-json report.json
"""

EPILOG = (
    "Exit codes: 0 complete (every selected message is at the destination); "
    "1 some messages failed or differ at the destination; "
    "2 usage or configuration error; 3 connection or login failure."
)

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str, option: str) -> int:
    """``100``, ``512k``, ``10M``, ``1.5G``, ``10MB``, ``10MiB`` -> bytes (binary units)."""
    match = _SIZE_RE.match(text.strip())
    if match is None:
        raise UsageError(f"{option}: {text!r} is not a size (examples: 100, 512k, 10M, 1G)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def parse_date(text: str, option: str) -> datetime:
    """``YYYY-MM-DD`` -> local midnight of that day, timezone-aware."""
    from datetime import datetime

    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a date YYYY-MM-DD") from None
    return day.astimezone()


def parse_map(items: list[str]) -> dict[str, str]:
    """``--map "Old/Name=New/Name"`` (repeatable) -> {"Old/Name": "New/Name"}."""
    result: dict[str, str] = {}
    for item in items:
        src, sep, dst = item.partition("=")
        src, dst = src.strip().strip("/"), dst.strip().strip("/")
        if not sep or not src or not dst:
            raise UsageError(f"--map: {item!r} is not SRC=DST (e.g. --map 'Sent Items=Sent')")
        if src in result and result[src] != dst:
            raise UsageError(f"--map: {src!r} is mapped twice")
        result[src] = dst
    return result


def _check_regexes(patterns: list[str], option: str) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UsageError(f"{option}: {pattern!r} is not a regular expression: {exc}") from None
    return patterns


def build_options(
    *,
    include: list[str],
    exclude: list[str],
    folder_map: list[str],
    dst_folder: str | None,
    since: str | None,
    before: str | None,
    min_size: str | None,
    max_size: str | None,
    dry_run: bool,
    delete_source: bool,
    verify: bool,
    jobs: int,
    batch_size: int,
) -> MigrateOptions:
    """The engine's options from the command line's (``UsageError`` when wrong)."""
    from mailgw.migrate.model import MigrateOptions

    opts = MigrateOptions(
        include=_check_regexes(list(include), "--include"),
        exclude=_check_regexes(list(exclude), "--exclude"),
        folder_map=parse_map(list(folder_map)),
        dst_folder=dst_folder.strip("/") if dst_folder else None,
        since=parse_date(since, "--since") if since else None,
        before=parse_date(before, "--before") if before else None,
        min_size=parse_size(min_size, "--min-size") if min_size else None,
        max_size=parse_size(max_size, "--max-size") if max_size else None,
        dry_run=dry_run,
        delete_source=delete_source,
        verify=verify,
        jobs=jobs,
        batch_messages=batch_size,
    )
    if opts.since and opts.before and opts.since >= opts.before:
        raise UsageError("--since must be before --before")
    if opts.min_size is not None and opts.max_size is not None and opts.min_size > opts.max_size:
        raise UsageError("--min-size is larger than --max-size")
    if dst_folder is not None and not opts.dst_folder:
        raise UsageError("--dst-folder: empty folder name")
    return opts


class PasswordReader:
    """Reads each endpoint's password once: file, environment, or a prompt."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], str] = {}

    def __call__(
        self, spec: EndpointSpec, file: Path | None, env: str, role: str, option: str
    ) -> str | None:
        from mailgw.cli.common import read_password

        if not spec.needs_password:
            if file is not None:
                raise UsageError(f"{option}: the {role} {spec.display} takes no password")
            return None
        if file is None and not os.environ.get(env):
            if not sys.stdin.isatty():
                raise PasswordError(
                    f"no password for the {role} {spec.display}: use {option} FILE "
                    f"(- for standard input), set ${env}, or run on a terminal to be prompted"
                )
            typer.echo(f"Password for the {role} {spec.display}", err=True)
            return read_password(None, env, confirm=False)
        key = (str(file) if file is not None else "", env)
        if key not in self._cache:
            self._cache[key] = read_password(file, env, confirm=False)
        return self._cache[key]


def _passwords(
    jobs: list[AccountJob], src_file: Path | None, dst_file: Path | None
) -> list[tuple[str | None, str | None]]:
    read = PasswordReader()
    result = []
    for job in jobs:
        src = read(
            job.source,
            job.source_password_file or src_file,
            SRC_PASSWORD_ENV,
            "source",
            "--src-password-file",
        )
        dst = read(
            job.destination,
            job.destination_password_file or dst_file,
            DST_PASSWORD_ENV,
            "destination",
            "--dst-password-file",
        )
        result.append((src, dst))
    return result


def _verbosity(ctx: typer.Context) -> int:
    state = ctx.find_root().obj
    return int(getattr(state, "verbosity", 0))


def _setup_logging(verbosity: int) -> None:
    import logging

    level = logging.ERROR if verbosity < 0 else logging.WARNING
    if verbosity == 1:
        level = logging.INFO
    elif verbosity > 1:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="mailgw: %(name)s: %(message)s", stream=sys.stderr)


def migrate(
    ctx: typer.Context,
    source: Annotated[
        str | None,
        typer.Argument(metavar="SOURCE", help="Where to copy from: an endpoint URL (see above)."),
    ] = None,
    dest: Annotated[
        str | None,
        typer.Argument(metavar="DEST", help="Where to copy to: imap, imaps, maildir or mbox URL."),
    ] = None,
    batch: Annotated[
        Path | None,
        typer.Option(
            "--batch",
            metavar="FILE",
            help="Migrate every account of this CSV file (header: source,destination and "
            "optionally source_password_file,destination_password_file,dst_folder; relative "
            "paths are relative to the file; # starts a comment line) instead of SOURCE DEST.",
        ),
    ] = None,
    accounts_parallel: Annotated[
        int,
        typer.Option("--accounts-parallel", min=1, help="With --batch: accounts run at once."),
    ] = 2,
    src_password_file: Annotated[
        Path | None,
        typer.Option(
            "--src-password-file",
            metavar="FILE",
            help="The source password: first line of FILE (- is standard input). "
            "Else $MAILGW_SRC_PASSWORD, else a prompt. Only for imap/pop3 sources.",
        ),
    ] = None,
    dst_password_file: Annotated[
        Path | None,
        typer.Option(
            "--dst-password-file",
            metavar="FILE",
            help="The destination password: first line of FILE (- is standard input). "
            "Else $MAILGW_DST_PASSWORD, else a prompt. Only for imap destinations.",
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Do not verify TLS certificates or host names."),
    ] = False,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            "--ca-file",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="Trust the CA certificates in this PEM file instead of the system's.",
        ),
    ] = None,
    allow_plaintext: Annotated[
        bool,
        typer.Option(
            "--allow-plaintext",
            help="Log in without TLS when an imap:// or pop3:// server offers no STARTTLS "
            "(always allowed to a loopback address).",
        ),
    ] = False,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include",
            metavar="REGEX",
            help="Copy only folders whose source name (parts joined with /) matches "
            "(repeatable; re.search).",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", metavar="REGEX", help="Skip matching folders (repeatable)."),
    ] = None,
    folder_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="SRC=DST",
            help="Copy source folder SRC into DST, subfolders following ('/'-separated "
            "names; repeatable).",
        ),
    ] = None,
    dst_folder: Annotated[
        str | None,
        typer.Option(
            "--dst-folder",
            metavar="FOLDER",
            help="Copy the source's INBOX (or the one folder of a POP3 or mbox-file source) "
            "into this folder instead of INBOX.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="YYYY-MM-DD", help="Only messages from this day on."),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option("--before", metavar="YYYY-MM-DD", help="Only messages before this day."),
    ] = None,
    min_size: Annotated[
        str | None,
        typer.Option("--min-size", metavar="SIZE", help="Only messages at least this big (512k)."),
    ] = None,
    max_size: Annotated[
        str | None,
        typer.Option("--max-size", metavar="SIZE", help="Only messages at most this big (10M)."),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", "-j", min=1, help="Connections per side; folders are copied in parallel."
        ),
    ] = 1,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, help="Messages per FETCH/APPEND round trip."),
    ] = 50,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Connect and print the plan (folders, messages, sizes); write nothing.",
        ),
    ] = False,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Read copied messages back and compare their content."),
    ] = False,
    delete_source: Annotated[
        bool,
        typer.Option(
            "--delete-source",
            help="Delete messages from the source once they are safely at the destination.",
        ),
    ] = False,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            metavar="FILE",
            help="State file (default: one per source/destination pair under "
            "$XDG_STATE_HOME/mailgw/migrate/).",
        ),
    ] = None,
    report_json: Annotated[
        Path | None,
        typer.Option("--report-json", metavar="FILE", help="Also write the report as JSON."),
    ] = None,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="No progress bars (even on a terminal).")
    ] = False,
) -> None:
    import asyncio

    from mailgw.migrate.batch import AccountJob, check_pair, load_batch, run_account, run_batch
    from mailgw.migrate.model import TlsOptions
    from mailgw.migrate.progress import TqdmProgress
    from mailgw.migrate.report import batch_json, render_batch, render_text, write_json
    from mailgw.migrate.results import overall_exit
    from mailgw.migrate.url import parse_endpoint

    verbosity = _verbosity(ctx)
    _setup_logging(verbosity)
    options = build_options(
        include=include or [],
        exclude=exclude or [],
        folder_map=folder_map or [],
        dst_folder=dst_folder,
        since=since,
        before=before,
        min_size=min_size,
        max_size=max_size,
        dry_run=dry_run,
        delete_source=delete_source,
        verify=verify,
        jobs=jobs,
        batch_size=batch_size,
    )
    tls = TlsOptions(insecure=insecure, ca_file=ca_file, allow_plaintext=allow_plaintext)
    if (
        src_password_file is not None
        and dst_password_file is not None
        and str(src_password_file) == "-" == str(dst_password_file)
    ):
        raise UsageError("only one of --src-password-file and --dst-password-file can be -")
    if batch is not None:
        if source is not None or dest is not None:
            raise UsageError("give either SOURCE DEST or --batch FILE, not both")
        if state is not None:
            raise UsageError("--state cannot be used with --batch (one state file per account)")
        jobs_list = load_batch(batch)
    else:
        if source is None or dest is None:
            raise UsageError("missing SOURCE and DEST (or --batch FILE); see mailgw migrate --help")
        src_spec = parse_endpoint(source, role="source")
        dst_spec = parse_endpoint(dest, role="destination")
        check_pair(src_spec, dst_spec)
        jobs_list = [AccountJob(source=src_spec, destination=dst_spec)]
    passwords = _passwords(jobs_list, src_password_file, dst_password_file)
    progress = TqdmProgress(
        enabled=None if (verbosity >= 0 and not no_progress) else False,
        show_account=batch is not None,
    )
    data: dict[str, Any]
    if batch is not None:
        reports = asyncio.run(
            run_batch(jobs_list, passwords, options, tls, progress, parallel=accounts_parallel)
        )
        code = overall_exit(reports)
        text = render_batch(reports)
        data = batch_json(reports)
    else:
        report = asyncio.run(run_account(jobs_list[0], passwords[0], options, tls, progress, state))
        code = report.exit_code
        text = render_text(report)
        data = report.to_json()
    if report_json is not None:
        try:
            write_json(report_json, data)
        except OSError as exc:
            typer.echo(
                f"mailgw: error: cannot write {report_json}: {exc.strerror or exc}", err=True
            )
            code = max(code, 1)
    if verbosity >= 0 or code != 0:
        typer.echo(text, nl=False)
    raise typer.Exit(code)


def register(app: Any) -> None:
    """Attach ``migrate`` to the root app."""
    app.command("migrate", help=HELP, epilog=EPILOG)(migrate)


__all__ = [
    "DST_PASSWORD_ENV",
    "EPILOG",
    "HELP",
    "SRC_PASSWORD_ENV",
    "build_options",
    "parse_date",
    "parse_map",
    "parse_size",
    "register",
]
