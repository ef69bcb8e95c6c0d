"""Counts and verdicts of a migration run: what the report shows and the exit code.

Exit codes (``mailgw migrate --help``): 0 complete, 1 some messages failed
(or verification found a difference), 2 usage or configuration, 3 connection
or login failure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mailgw.errors import EXIT_FAILURE, EXIT_NETWORK, EXIT_OK


@dataclass
class FolderReport:
    source: str  # "/"-joined source name
    destination: str  # "/"-joined destination name
    source_count: int = 0  # messages in the source folder (after filters)
    source_bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    skipped_present: int = 0  # already at the destination (state or content match)
    failed: int = 0
    flags_synced: int = 0  # messages whose flags were updated on the destination
    flags_dropped: list[str] = field(default_factory=list)  # flags the destination refused
    deleted_source: int = 0
    verified: int = 0
    verify_failed: int = 0
    errors: list[str] = field(default_factory=list)  # "key: reason", one per failure

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.verify_failed == 0 and not self.errors


@dataclass
class AccountReport:
    source: str  # endpoint display (no password)
    destination: str
    dry_run: bool = False
    folders: list[FolderReport] = field(default_factory=list)
    error: str | None = None  # connection or login failure: nothing (more) was done
    error_exit: int = EXIT_NETWORK  # exit code for ``error`` (3 for network, 1 otherwise)
    started: float = 0.0
    finished: float = 0.0

    @property
    def verdict(self) -> str:
        """ "complete", "incomplete" (some messages failed or differ) or "failed"."""
        if self.error is not None:
            return "failed"
        return "complete" if all(f.ok for f in self.folders) else "incomplete"

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.error_exit
        return EXIT_OK if self.verdict == "complete" else EXIT_FAILURE

    def totals(self) -> dict[str, int]:
        keys = (
            "source_count",
            "source_bytes",
            "copied",
            "copied_bytes",
            "skipped_present",
            "failed",
            "flags_synced",
            "deleted_source",
            "verified",
            "verify_failed",
        )
        return {k: sum(getattr(f, k) for f in self.folders) for k in keys}

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "dry_run": self.dry_run,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "error": self.error,
            "started": self.started,
            "finished": self.finished,
            "seconds": round(max(0.0, self.finished - self.started), 3),
            "totals": self.totals(),
            "folders": [asdict(f) for f in self.folders],
        }


def overall_exit(reports: list[AccountReport]) -> int:
    """Batch: 0 if all complete; 3 if every account failed to connect; else 1."""
    if not reports or all(r.exit_code == EXIT_OK for r in reports):
        return EXIT_OK
    if all(r.error is not None for r in reports):
        return max(r.exit_code for r in reports)
    return EXIT_FAILURE


__all__ = ["AccountReport", "FolderReport", "overall_exit"]
