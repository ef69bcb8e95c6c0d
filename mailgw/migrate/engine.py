"""``migrate_account``: one source account to one destination account.

Theory of operation.  Connect both endpoints (``ConnectFailed``/``LoginFailed``
become ``AccountReport.error``, exit 3); list folders on both sides and plan
the folder pairs (``folders.py``); create the destination folders one by one
on the first connection (no CREATE races between workers, RFC 3501 6.3.3);
then spread the folders over ``options.jobs`` workers, each with its own
source and destination connection (worker 0 uses the given ones, the others
``clone()``).  A folder is copied by ``copier.FolderCopier``.  An error in a
folder (``EndpointError``, a lost connection, a full disk) is recorded in that
folder's report; the worker then reconnects and goes on with the next
folder.  Folders no worker could take (every connection lost) are reported
as not copied.  Connections and temp files are always closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Sequence
from typing import cast

from mailgw.errors import (
    EXIT_FAILURE,
    EXIT_NETWORK,
    ConnectFailed,
    LoginFailed,
    MailgwError,
    UsageError,
)
from mailgw.migrate.copier import FolderCopier, together
from mailgw.migrate.endpoints.base import Destination, Source
from mailgw.migrate.folders import FolderPair, plan_folders
from mailgw.migrate.model import MigrateOptions, NullProgress, Progress
from mailgw.migrate.results import AccountReport, FolderReport
from mailgw.migrate.state import StateDB

#: errors that end one folder but not the run
FOLDER_ERRORS = (MailgwError, OSError, sqlite3.Error)


async def _close_quietly(*endpoints: Source | Destination) -> None:
    for ep in endpoints:
        with contextlib.suppress(Exception):  # closing a possibly dead connection
            await ep.close()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


async def migrate_account(
    src: Source,
    dst: Destination,
    options: MigrateOptions,
    state: StateDB,
    progress: Progress | None = None,
) -> AccountReport:
    """Copy every planned folder of ``src`` to ``dst``; see the module docstring."""
    progress = progress if progress is not None else NullProgress()
    report = AccountReport(
        source=src.display, destination=dst.display, dry_run=options.dry_run, started=time.time()
    )
    try:
        await _migrate(src, dst, options, state, progress, report)
    finally:
        report.finished = time.time()
    return report


async def _migrate(
    src: Source,
    dst: Destination,
    options: MigrateOptions,
    state: StateDB,
    progress: Progress,
    report: AccountReport,
) -> None:
    try:
        await asyncio.to_thread(state.bind, src.display, dst.display, record=not options.dry_run)
    except UsageError as e:
        report.error, report.error_exit = str(e), e.exit_code
        return
    opened: list[Source | Destination] = []
    try:
        try:
            await src.connect()
            opened.append(src)
            await dst.connect()
            opened.append(dst)
        except (ConnectFailed, LoginFailed) as e:
            report.error, report.error_exit = _describe(e), EXIT_NETWORK
            return
        try:
            src_folders = await src.list_folders()
            dst_folders = await dst.list_folders()
            pairs = plan_folders(src_folders, dst_folders, options, dst.separator)
        except UsageError as e:
            report.error, report.error_exit = str(e), e.exit_code
            return
        except FOLDER_ERRORS as e:
            report.error, report.error_exit = _describe(e), EXIT_FAILURE
            return
        reports = {i: FolderReport(p.source_text, p.destination_text) for i, p in enumerate(pairs)}
        work: list[tuple[int, FolderPair]] = []
        for i, pair in enumerate(pairs):
            if not options.dry_run:
                try:
                    await dst.ensure_folder(pair.destination, pair.special_use)
                except FOLDER_ERRORS as e:
                    reports[i].errors.append(f"{pair.destination_text}: {_describe(e)}")
                    continue
            if pair.copy:
                work.append((i, pair))
            elif not reports[i].errors:
                del reports[i]  # a non-selectable folder, created: nothing to report
        # unchanged folders (same change token as the last clean run) are settled here,
        # on the first connections: a re-run with nothing new opens no others
        screened: list[tuple[int, FolderPair, str | None]] = []
        for i, pair in work:
            copier = FolderCopier(src, dst, pair, options, state, progress, reports[i])
            try:
                token = await copier.screen()
            except FOLDER_ERRORS:
                token = None
            if token != "":
                screened.append((i, pair, token))
        await _run_workers(src, dst, screened, reports, options, state, progress)
        report.folders = [reports[i] for i in sorted(reports)]
    finally:
        await _close_quietly(*opened)


async def _run_workers(
    src: Source,
    dst: Destination,
    work: Sequence[tuple[int, FolderPair, str | None]],
    reports: dict[int, FolderReport],
    options: MigrateOptions,
    state: StateDB,
    progress: Progress,
) -> None:
    queue: asyncio.Queue[tuple[int, FolderPair, str | None]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    jobs = max(1, min(options.jobs, len(work)))

    async def worker(n: int) -> None:
        s: Source = src
        d: Destination = dst
        own: list[Source | Destination] = []
        broken = n > 0  # workers other than 0 open their own connections
        try:
            while not queue.empty():
                if broken:
                    if n == 0 and s is src:
                        await _close_quietly(src, dst)  # only worker 0 uses these
                    await _close_quietly(*own)
                    own.clear()
                    try:
                        s, d = await _fresh_pair(src, dst, own)
                    except FOLDER_ERRORS:
                        return  # e.g. a server's connection limit: the other workers go on
                    broken = False
                try:
                    i, pair, token = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                rep = reports[i]
                try:
                    copier = FolderCopier(
                        s, d, pair, options, state, progress, rep, screened=(token,)
                    )
                    await copier.run()
                except FOLDER_ERRORS as e:
                    rep.errors.append(f"{pair.source_text}: {_describe(e)}")
                    broken = True  # the connections may be dead: fresh ones for the next
        finally:
            await _close_quietly(*own)

    await together(*(worker(n) for n in range(jobs)))
    while not queue.empty():
        i, pair, _ = queue.get_nowait()
        reports[i].errors.append(f"{pair.source_text}: not copied: connections lost")


async def _fresh_pair(
    src: Source, dst: Destination, own: list[Source | Destination]
) -> tuple[Source, Destination]:
    s = cast(Source, src.clone())
    d = cast(Destination, dst.clone())
    await s.connect()
    own.append(s)
    await d.connect()
    own.append(d)
    return s, d


__all__ = ["FOLDER_ERRORS", "migrate_account"]
