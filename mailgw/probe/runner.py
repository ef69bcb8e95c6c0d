"""Run many probes at once under one deadline.

Theory of operation
-------------------
:func:`run_probes` starts one task per target (SMTP, POP3 or IMAP by the
target's protocol) and gives each the same absolute deadline (event-loop
time).  Each probe bounds itself by that deadline and reports ``timeout`` with
the phase it was in; as a backstop the runner waits at most the deadline plus
:data:`GRACE`, cancels whatever is still running and marks it ``timeout``.
Every probe fills its :class:`~mailgw.probe.model.ProbeResult` in place, so a
cancelled probe keeps what it had gathered.  Results come back in the order
of the targets.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailgw.probe.conn import new_result
from mailgw.probe.imap import probe_imap
from mailgw.probe.model import ProbeReport, ProbeResult
from mailgw.probe.pop3 import probe_pop3
from mailgw.probe.smtp import probe_smtp
from mailgw.probe.targets import Target

GRACE = 0.25  # seconds past the deadline before the runner cancels a probe itself


def _local_fqdn() -> str:
    name = socket.getfqdn()
    return name if name and "." in name else "localhost.localdomain"


@dataclass
class ProbeOptions:
    deadline: float = 10.0  # seconds for the whole run
    ca_file: Path | None = None  # trust anchors for chain verification; None: system store
    user: str | None = None  # login test (with password)
    password: str | None = None
    ehlo_name: str = field(default_factory=_local_fqdn)
    tarpit_after: float = 5.0  # a greeting slower than this marks the result "tarpit"
    insecure: bool = False  # allow the login test without TLS
    # a dnspython async resolver for host names (tests, --mx with a private server);
    # None: the system resolver (getaddrinfo)
    resolver: Any = None


ProbeFunc = Callable[..., Awaitable[ProbeResult]]


def probe_function(target: Target) -> ProbeFunc:
    return {"smtp": probe_smtp, "pop3": probe_pop3, "imap": probe_imap}[target.family]


async def probe_one(
    target: Target, options: ProbeOptions, deadline: float, result: ProbeResult
) -> ProbeResult:
    return await probe_function(target)(target, options, deadline, result=result)


async def run_probes(
    targets: Sequence[Target],
    options: ProbeOptions,
    *,
    mx: Mapping[str, list[str]] | None = None,
) -> ProbeReport:
    """Probe every target concurrently; all done (or marked timeout) by the deadline.

    ``mx`` (``--mx`` domain -> hosts in preference order) is copied into the report.
    """
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    t0 = time.monotonic()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + options.deadline
    results = [new_result(t) for t in targets]
    tasks = [
        asyncio.create_task(probe_one(t, options, deadline, r))
        for t, r in zip(targets, results, strict=True)
    ]
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=options.deadline + GRACE)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task, result in zip(tasks, results, strict=True):
            if task in pending:
                result.state = "timeout"
                result.error = result.error or "no complete answer before the deadline"
            elif not task.cancelled() and task.exception() is not None:
                result.state = "error"  # a bug in a probe: keep the run going
                result.error = f"internal error: {task.exception()!r}"
    return ProbeReport(
        results=results,
        started=started,
        deadline=options.deadline,
        elapsed=time.monotonic() - t0,
        mx={k: list(v) for k, v in (mx or {}).items()},
    )


__all__ = ["ProbeOptions", "probe_function", "run_probes"]
