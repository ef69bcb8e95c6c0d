"""Progress bars for ``mailgw migrate`` (tqdm), one per folder being copied.

Theory of operation.  The engine calls ``Progress.folder(account, folder,
messages, nbytes)`` when it starts copying a folder and ``advance`` per message
handled (see :class:`mailgw.migrate.model.Progress`).  :class:`TqdmProgress`
draws one bar per open folder: bytes with binary unit scaling (KiB, MiB), the
rate and the ETA come from tqdm; the message count is the postfix
(``12/340 msg``).  With ``-j`` (and with ``--batch`` running accounts side by
side) several folders are open at once: each bar takes the lowest free screen
line (tqdm ``position``) and gives it back when closed, so bars never overlap
and lines are reused.  A closed bar disappears (``leave=False``) and leaves a
one-line summary above the live bars (``tqdm.write``).

The bars go to standard error and only when it is a terminal: a cron job or a
pipe gets no escape sequences (``enabled=False`` acts like ``NullProgress``).
"""

from __future__ import annotations

import heapq
import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

from mailgw.migrate.model import FolderProgress, NullProgress, Progress

if TYPE_CHECKING:
    from tqdm import tqdm as Tqdm

DESC_WIDTH = 32
# tqdm's default, with the byte unit after the counts (unit_divisor 1024: "4.00kB")
BAR_FORMAT = "{l_bar}{bar}| {n_fmt}B/{total_fmt}B [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


def _short(text: str, width: int = DESC_WIDTH) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


class _TqdmFolder:
    def __init__(
        self, owner: TqdmProgress, bar: Tqdm, position: int, label: str, total: int
    ) -> None:
        self._owner = owner
        self._bar = bar
        self._position = position
        self._label = label
        self._total = total
        self._done = 0
        self._bytes = 0
        self._started = time.monotonic()
        self._closed = False

    def advance(self, messages: int, nbytes: int) -> None:
        if self._closed:
            return
        self._done += messages
        self._bytes += nbytes
        self._bar.set_postfix_str(f"{self._done}/{self._total} msg", refresh=False)
        self._bar.update(nbytes)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bar.close()
        from tqdm import tqdm

        from mailgw.migrate.report import human_bytes

        seconds = time.monotonic() - self._started
        tqdm.write(
            f"{self._label}: {self._done}/{self._total} messages, "
            f"{human_bytes(self._bytes)} in {seconds:.1f}s",
            file=self._owner.file,
        )
        self._owner._release(self._position)


class TqdmProgress:
    """tqdm bars per folder on a terminal; nothing otherwise.

    ``enabled``: None means "when ``file`` is a TTY".  ``show_account``: put the
    account in each bar's label (for ``--batch``).
    """

    def __init__(
        self,
        *,
        file: TextIO | None = None,
        enabled: bool | None = None,
        show_account: bool = False,
        mininterval: float = 0.1,
    ) -> None:
        self.file: TextIO = file if file is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.file, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.show_account = show_account
        self.mininterval = mininterval
        self._lock = threading.Lock()
        self._free: list[int] = []  # released positions (a heap)
        self._next = 0  # the next never-used position

    def _take(self) -> int:
        with self._lock:
            if self._free:
                return heapq.heappop(self._free)
            self._next += 1
            return self._next - 1

    def _release(self, position: int) -> None:
        with self._lock:
            heapq.heappush(self._free, position)

    def folder(self, account: str, folder: str, messages: int, nbytes: int) -> FolderProgress:
        if not self.enabled or messages == 0:  # nothing to copy: no bar, no summary line
            return NullProgress().folder(account, folder, messages, nbytes)
        from tqdm import tqdm

        label = f"{account} {folder}" if self.show_account else folder
        position = self._take()
        bar = tqdm(
            total=nbytes or None,
            desc=_short(label),
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            position=position,
            leave=False,
            file=self.file,
            dynamic_ncols=True,
            postfix=f"0/{messages} msg",
            bar_format=BAR_FORMAT,
            mininterval=self.mininterval,
        )
        return _TqdmFolder(self, bar, position, label, messages)


__all__ = ["FolderProgress", "NullProgress", "Progress", "TqdmProgress"]
