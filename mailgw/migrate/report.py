"""Render migration results: the text report, the dry-run plan, the JSON file.

Theory of operation.  The engine returns one :class:`AccountReport` per account
(see ``results.py``); this module only formats it.  The text report is a table,
one row per folder (source -> destination, messages in the source after the
filters, copied, skipped as already present, failed, flags synced, verify,
flags the destination dropped), a TOTAL row, a one-line summary, the errors
(at most ``max_errors``, then "and N more": all of them are in the JSON) and
the verdict with its exit code.  ``--dry-run`` reports are rendered as a plan
(folders, message counts and sizes, what would be copied).  JSON is
``AccountReport.to_json()``; a batch writes ``{"accounts": [...], "verdict",
"exit_code"}``.  Sizes are binary units (1 KiB = 1024 bytes).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mailgw.migrate.results import AccountReport, FolderReport, overall_exit

MAX_ERRORS = 20
_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``12.3 MiB``, ``2.0 GiB``."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    index = 0
    while True:
        value /= 1024
        if value < 1024 or index == len(_UNITS) - 1:
            return f"{value:.1f} {_UNITS[index]}"
        index += 1


def _table(rows: list[list[str]], numeric: set[int]) -> list[str]:
    """Columns padded to their widest cell; ``numeric`` columns right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return out


def _verify_cell(f: FolderReport | dict[str, int]) -> str:
    verified = f.verified if isinstance(f, FolderReport) else f["verified"]
    bad = f.verify_failed if isinstance(f, FolderReport) else f["verify_failed"]
    if bad:
        return f"{bad} FAILED"
    return f"{verified} ok" if verified else "-"


def _errors(report: AccountReport, max_errors: int) -> list[str]:
    errors = [f"{f.source}: {e}" for f in report.folders for e in f.errors]
    if not errors:
        return []
    lines = [f"Errors ({len(errors)}):"]
    lines += [f"  {e}" for e in errors[:max_errors]]
    if len(errors) > max_errors:
        more = len(errors) - max_errors
        lines.append(f"  ... and {more} more (all are in the --report-json file)")
    return lines


def _seconds(report: AccountReport) -> float | None:
    if report.started and report.finished >= report.started:
        return report.finished - report.started
    return None


def verdict_line(report: AccountReport) -> str:
    code = report.exit_code
    if report.error is not None:
        return f"Verdict: failed: {report.error} (exit {code})"
    if report.verdict == "complete":
        return f"Verdict: complete (exit {code})"
    t = report.totals()
    why = []
    if t["failed"]:
        why.append(f"{t['failed']} message(s) failed")
    if t["verify_failed"]:
        why.append(f"{t['verify_failed']} message(s) differ at the destination")
    if not why:
        why.append("errors in some folders")
    return f"Verdict: incomplete: {', '.join(why)} (exit {code})"


def render_text(report: AccountReport, *, max_errors: int = MAX_ERRORS) -> str:
    """The report after a run (a dry run is rendered by :func:`render_plan`)."""
    if report.dry_run:
        return render_plan(report, max_errors=max_errors)
    lines = [f"Migration {report.source} -> {report.destination}"]
    if report.error is not None:
        lines.append(f"Error: {report.error}")
    if report.folders:
        deleted = any(f.deleted_source for f in report.folders)
        header = ["FOLDER -> DESTINATION", "SOURCE", "COPIED", "PRESENT", "FAILED", "FLAGS"]
        header += ["DELETED"] if deleted else []
        header += ["VERIFY", "DROPPED FLAGS"]
        rows = [header]
        for f in report.folders:
            row = [f"{f.source} -> {f.destination}"]
            row += [str(n) for n in (f.source_count, f.copied, f.skipped_present, f.failed)]
            row += [str(f.flags_synced)] + ([str(f.deleted_source)] if deleted else [])
            row += [_verify_cell(f), " ".join(sorted(set(f.flags_dropped))) or "-"]
            rows.append(row)
        t = report.totals()
        total = ["TOTAL"]
        total += [str(t[k]) for k in ("source_count", "copied", "skipped_present", "failed")]
        total += [str(t["flags_synced"])] + ([str(t["deleted_source"])] if deleted else [])
        total += [_verify_cell(t), ""]
        rows.append(total)
        numeric = set(range(1, len(header) - 2))
        lines += _table(rows, numeric)
        took = _seconds(report)
        summary = (
            f"Copied {t['copied']} message(s) ({human_bytes(t['copied_bytes'])}) "
            f"in {len(report.folders)} folder(s)"
        )
        summary += f" in {took:.1f}s" if took is not None else ""
        summary += (
            f"; {t['skipped_present']} already present; {t['failed']} failed; "
            f"flags synced on {t['flags_synced']}."
        )
        lines.append(summary)
        if deleted:
            lines.append(f"Deleted {t['deleted_source']} message(s) from the source.")
    elif report.error is None:
        lines.append("No folders to copy (check --include/--exclude).")
    lines += _errors(report, max_errors)
    lines.append(verdict_line(report))
    return "\n".join(lines) + "\n"


def render_plan(report: AccountReport, *, max_errors: int = MAX_ERRORS) -> str:
    """The ``--dry-run`` plan: folders, counts, sizes, what would be copied."""
    lines = [f"Plan for {report.source} -> {report.destination} (dry run: nothing is written)"]
    if report.error is not None:
        lines.append(f"Error: {report.error}")
    if report.folders:
        rows = [["FOLDER -> DESTINATION", "MESSAGES", "SIZE", "TO COPY", "COPY SIZE", "PRESENT"]]
        for f in report.folders:
            rows.append(
                [
                    f"{f.source} -> {f.destination}",
                    str(f.source_count),
                    human_bytes(f.source_bytes),
                    str(f.copied),
                    human_bytes(f.copied_bytes),
                    str(f.skipped_present),
                ]
            )
        t = report.totals()
        rows.append(
            [
                "TOTAL",
                str(t["source_count"]),
                human_bytes(t["source_bytes"]),
                str(t["copied"]),
                human_bytes(t["copied_bytes"]),
                str(t["skipped_present"]),
            ]
        )
        lines += _table(rows, {1, 2, 3, 4, 5})
        lines.append(
            f"Would copy {t['copied']} of {t['source_count']} message(s) "
            f"({human_bytes(t['copied_bytes'])} of {human_bytes(t['source_bytes'])}) "
            f"in {len(report.folders)} folder(s); {t['skipped_present']} already present."
        )
    elif report.error is None:
        lines.append("No folders to copy (check --include/--exclude).")
    lines += _errors(report, max_errors)
    if report.error is not None or report.verdict != "complete":
        lines.append(verdict_line(report))
    return "\n".join(lines) + "\n"


def batch_verdict(reports: Sequence[AccountReport]) -> str:
    if reports and all(r.verdict == "failed" for r in reports):
        return "failed"
    return "complete" if all(r.verdict == "complete" for r in reports) else "incomplete"


def render_batch(reports: Sequence[AccountReport], *, max_errors: int = MAX_ERRORS) -> str:
    """Every account's report, then one summary table and the overall verdict."""
    parts = [render_text(r, max_errors=max_errors) for r in reports]
    rows = [["ACCOUNT", "VERDICT", "COPIED", "PRESENT", "FAILED"]]
    for r in reports:
        t = r.totals()
        rows.append(
            [
                f"{r.source} -> {r.destination}",
                r.verdict,
                str(t["copied"]),
                str(t["skipped_present"]),
                str(t["failed"]),
            ]
        )
    counts = {v: sum(r.verdict == v for r in reports) for v in ("complete", "incomplete", "failed")}
    summary = [
        f"Summary: {len(reports)} account(s): {counts['complete']} complete, "
        f"{counts['incomplete']} incomplete, {counts['failed']} failed"
    ]
    if reports:
        summary += _table(rows, {2, 3, 4})
    summary.append(f"Verdict: {batch_verdict(reports)} (exit {overall_exit(list(reports))})")
    return "".join(part + "\n" for part in parts) + "\n".join(summary) + "\n"


def batch_json(reports: Sequence[AccountReport]) -> dict[str, Any]:
    return {
        "accounts": [r.to_json() for r in reports],
        "verdict": batch_verdict(reports),
        "exit_code": overall_exit(list(reports)),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (a temp file renamed over it)."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


__all__ = [
    "MAX_ERRORS",
    "batch_json",
    "batch_verdict",
    "human_bytes",
    "render_batch",
    "render_plan",
    "render_text",
    "verdict_line",
    "write_json",
]
