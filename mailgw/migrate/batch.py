"""Running migrations: one account, or many from ``--batch accounts.csv``.

Theory of operation.  :func:`run_account` builds the two endpoints
(:func:`mailgw.migrate.open.make_endpoint`), opens the account's state file
(``StateDB.default_path(src display, dst display)`` unless ``--state`` names
one; read-only for ``--dry-run``, which must write nothing) and awaits
``engine.migrate_account``.  A ``MailgwError`` or ``OSError``
escaping the engine (it should turn connection and login failures into
``AccountReport.error`` itself) becomes the report's error with the error's
exit code, so the report and ``--report-json`` are written in every case.

The batch file is CSV (RFC 4180) in UTF-8 with a header row.  Columns:
``source`` and ``destination`` (required, endpoint URLs as on the command line),
``source_password_file``, ``destination_password_file`` and ``dst_folder``
(optional; relative password-file paths are relative to the CSV file).  Blank
lines and lines starting with ``#`` are skipped.  Every mistake is a
``ConfigError`` naming ``file:line`` and the column.  The same source and
destination twice is refused (the two runs would share one state file).

:func:`run_batch` runs the accounts with at most ``parallel`` at a time in one
event loop; an account that fails (even with an unexpected exception) gets a
"failed" report and the others go on.  The overall exit code is
:func:`mailgw.migrate.results.overall_exit`.
"""

from __future__ import annotations

import asyncio
import csv
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mailgw.errors import EXIT_FAILURE, ConfigError, MailgwError, UsageError
from mailgw.migrate.model import MigrateOptions, NullProgress, Progress, TlsOptions
from mailgw.migrate.results import AccountReport
from mailgw.migrate.url import EndpointSpec, Role, parse_endpoint

if TYPE_CHECKING:
    from mailgw.migrate.state import StateDB

REQUIRED_COLUMNS = ("source", "destination")
OPTIONAL_COLUMNS = ("source_password_file", "destination_password_file", "dst_folder")
DEFAULT_PARALLEL = 2


@dataclass(frozen=True)
class AccountJob:
    """One account to migrate (a CSV row, or SOURCE DEST from the command line)."""

    source: EndpointSpec
    destination: EndpointSpec
    source_password_file: Path | None = None
    destination_password_file: Path | None = None
    dst_folder: str | None = None
    line: int | None = None  # the CSV line, for messages

    @property
    def label(self) -> str:
        return f"{self.source.display} -> {self.destination.display}"


def check_pair(source: EndpointSpec, destination: EndpointSpec) -> None:
    """Refuse copying an endpoint onto itself."""
    if source.display == destination.display:
        raise UsageError(f"source and destination are the same: {source.display}")


# --- the CSV file ------------------------------------------------------------


def _password_file(
    value: str, base: Path, spec: EndpointSpec, file: str, line: int, column: str
) -> Path:
    if not spec.needs_password:
        raise ConfigError(
            f"{spec.display} takes no password (only imap/pop3 endpoints do)",
            file=file,
            line=line,
            key=column,
        )
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else base / path


def _row_job(fields: dict[str, str], base: Path, file: str, line: int) -> AccountJob:
    specs: dict[str, EndpointSpec] = {}
    roles: tuple[tuple[str, Role], ...] = (("source", "source"), ("destination", "destination"))
    for column, role in roles:
        value = fields.get(column, "")
        if not value:
            raise ConfigError(
                "empty (an endpoint URL is required)", file=file, line=line, key=column
            )
        try:
            specs[column] = parse_endpoint(value, role=role)
        except UsageError as exc:
            raise ConfigError(exc.message, file=file, line=line, key=column) from None
    src, dst = specs["source"], specs["destination"]
    try:
        check_pair(src, dst)
    except UsageError as exc:
        raise ConfigError(exc.message, file=file, line=line, key="destination") from None
    files: dict[str, Path | None] = {}
    for column, spec in (("source_password_file", src), ("destination_password_file", dst)):
        value = fields.get(column, "")
        files[column] = _password_file(value, base, spec, file, line, column) if value else None
    return AccountJob(
        source=src,
        destination=dst,
        source_password_file=files["source_password_file"],
        destination_password_file=files["destination_password_file"],
        dst_folder=fields.get("dst_folder") or None,
        line=line,
    )


def load_batch(path: Path) -> list[AccountJob]:
    """The accounts of a batch CSV file; ``ConfigError`` (exit 2) names file:line: column."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=file) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", file=file) from None
    base = path.parent
    consumed: list[int] = []  # original line numbers handed to the csv reader

    def feed() -> Iterator[str]:
        for number, raw in enumerate(text.splitlines(), 1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            consumed.append(number)
            yield raw

    reader = csv.reader(feed(), skipinitialspace=True, strict=True)
    header: list[str] | None = None
    jobs: list[AccountJob] = []
    seen: dict[tuple[str, str], int] = {}
    while True:
        start = len(consumed)
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line = consumed[start] if start < len(consumed) else None
            raise ConfigError(f"bad CSV: {exc}", file=file, line=line) from None
        line = consumed[start]
        cells = [cell.strip() for cell in row]
        if header is None:
            header = [cell.lower() for cell in cells]
            for column in header:
                if column not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
                    known = ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
                    raise ConfigError(
                        f"unknown column in the header (known: {known})",
                        file=file,
                        line=line,
                        key=column or "(empty)",
                    )
                if header.count(column) > 1:
                    raise ConfigError("column given twice", file=file, line=line, key=column)
            for column in REQUIRED_COLUMNS:
                if column not in header:
                    raise ConfigError(
                        f"the header row has no {column!r} column "
                        f"(the first line must name the columns: source,destination,...)",
                        file=file,
                        line=line,
                    )
            continue
        if len(cells) > len(header):
            raise ConfigError(
                f"{len(cells)} fields but the header names {len(header)} columns",
                file=file,
                line=line,
            )
        fields = dict(zip(header, cells, strict=False))
        job = _row_job(fields, base, file, line)
        pair = (job.source.display, job.destination.display)
        if pair in seen:
            raise ConfigError(
                f"the same source and destination as line {seen[pair]}", file=file, line=line
            )
        seen[pair] = line
        jobs.append(job)
    if header is None:
        raise ConfigError("empty: expected a header row (source,destination,...)", file=file)
    if not jobs:
        raise ConfigError("no accounts listed", file=file)
    return jobs


# --- running -----------------------------------------------------------------


@contextmanager
def open_state(path: Path, dry_run: bool) -> Iterator[StateDB]:
    """The state database at ``path``, read-only for a dry run (nothing is created)."""
    from mailgw.migrate.state import StateDB

    state = StateDB(path, readonly=dry_run)
    try:
        yield state
    finally:
        state.close()


async def run_account(
    job: AccountJob,
    passwords: tuple[str | None, str | None],
    options: MigrateOptions,
    tls: TlsOptions,
    progress: Progress | None = None,
    state_path: Path | None = None,
) -> AccountReport:
    """Migrate one account; failures to connect or log in are in the report."""
    from mailgw.migrate.engine import migrate_account
    from mailgw.migrate.open import make_endpoint
    from mailgw.migrate.state import StateDB

    n, nbytes = options.batch_messages, options.batch_bytes
    src = make_endpoint(
        job.source, passwords[0], tls, batch_messages=n, batch_bytes=nbytes, role="source"
    )
    dst = make_endpoint(job.destination, passwords[1], tls, batch_messages=n, batch_bytes=nbytes)
    src_display = getattr(src, "display", job.source.display)
    dst_display = getattr(dst, "display", job.destination.display)
    if job.dst_folder is not None:
        options = replace(options, dst_folder=job.dst_folder)
    if state_path is None:
        state_path = StateDB.default_path(src_display, dst_display)
    try:
        with open_state(state_path, options.dry_run) as state:
            return await migrate_account(
                src,  # type: ignore[arg-type]
                dst,  # type: ignore[arg-type]
                options,
                state,
                progress if progress is not None else NullProgress(),
            )
    except (MailgwError, OSError) as exc:
        code = exc.exit_code if isinstance(exc, MailgwError) else EXIT_FAILURE
        message = str(exc) if isinstance(exc, MailgwError) else f"{exc.strerror or exc}"
        return AccountReport(
            source=src_display,
            destination=dst_display,
            dry_run=options.dry_run,
            error=message,
            error_exit=code,
        )


async def run_batch(
    jobs: Sequence[AccountJob],
    passwords: Sequence[tuple[str | None, str | None]],
    options: MigrateOptions,
    tls: TlsOptions,
    progress: Progress | None = None,
    parallel: int = DEFAULT_PARALLEL,
) -> list[AccountReport]:
    """Every account, at most ``parallel`` at a time; reports in the jobs' order."""
    gate = asyncio.Semaphore(max(1, parallel))

    async def one(job: AccountJob, pw: tuple[str | None, str | None]) -> AccountReport:
        async with gate:
            try:
                return await run_account(job, pw, options, tls, progress)
            except Exception as exc:  # one broken account must not stop the others
                return AccountReport(
                    source=job.source.display,
                    destination=job.destination.display,
                    dry_run=options.dry_run,
                    error=f"internal error: {exc!r}",
                    error_exit=EXIT_FAILURE,
                )

    return list(await asyncio.gather(*(one(j, p) for j, p in zip(jobs, passwords, strict=True))))


__all__ = [
    "DEFAULT_PARALLEL",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "AccountJob",
    "check_pair",
    "load_batch",
    "open_state",
    "run_account",
    "run_batch",
]
