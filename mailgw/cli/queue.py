"""``mailgw queue``: look at and act on the outbound spool.

Thin: parse options, call ``mailgw.relay.spool.Spool`` (or, for ``run``, the
``QueueRunner``), render.  Changes to one entry (hold, release, flush,
delete) take the entry's delivery lock first, so they never race a delivery
attempt of ``serve``'s runner or a cron ``mailgw queue run``; an entry being
delivered right now gives "busy, try again" (exit 1).  A running ``serve``
notices changes by itself: its runner re-reads the spool periodically.

``status --nagios`` follows the Monitoring Plugins guidelines: one line
``QUEUE OK - 3 messages, oldest 5m | messages=3;10;50;0 oldest=300s;600;3600;0``
and exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the spool cannot be read).
Held entries (e.g. a smarthost route held after an authentication failure)
make it at least WARNING, with the reason.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailgw.cli import common
from mailgw.errors import MailgwError, UsageError

if TYPE_CHECKING:
    from mailgw.config.schema import Config
    from mailgw.relay.spool import QueueEntry, Spool

app = typer.Typer(
    help=(
        "Inspect and manage the outbound mail queue (the relay spool: relay.spool_dir, by "
        "default DATA_DIR/queue). Safe next to a running serve: hold, release, flush and "
        "delete take the entry's delivery lock, so they never race a delivery (an entry being "
        "delivered right now answers 'busy, try again', exit 1); serve's runner notices the "
        "changes by itself."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    epilog=(
        "Exit codes: 0 success; 1 the operation failed (unknown or busy entry, spool error); "
        "2 usage or configuration error. 'queue status --nagios' exits with the Monitoring "
        "Plugins codes instead: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."
    ),
)

NAGIOS_OK, NAGIOS_WARNING, NAGIOS_CRITICAL, NAGIOS_UNKNOWN = 0, 1, 2, 3
NAGIOS_NAMES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")

QueueId = Annotated[str, typer.Argument(help="Queue id (16 hex digits, see `queue list`).")]


def _spool(ctx: typer.Context) -> tuple[Config, Spool]:
    from mailgw.relay.sendmail import spool_dir_of
    from mailgw.relay.spool import Spool

    config = common.load_cli_config(ctx)
    return config, Spool(spool_dir_of(config))


def human_duration(seconds: float) -> str:
    """``42s``, ``5m``, ``3h12m``, ``2d4h`` (negative: ``-5m``)."""
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    if s < 60:
        text = f"{s}s"
    elif s < 3600:
        text = f"{s // 60}m"
    elif s < 86400:
        text = f"{s // 3600}h{(s % 3600) // 60:02d}m"
    else:
        text = f"{s // 86400}d{(s % 86400) // 3600}h"
    return sign + text


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size}B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f}K"
    return f"{size / (1024 * 1024):.1f}M"


def entry_json(entry: QueueEntry, now: float) -> dict[str, Any]:
    """One ``queue list --json`` line."""
    return {
        "id": entry.id,
        "age": round(now - entry.created, 3),
        "created": entry.created,
        "size": entry.size,
        "sender": entry.sender,
        "source": entry.source,
        "attempts": entry.attempts,
        "next_attempt": entry.next_attempt,
        "next_attempt_in": round(max(0.0, entry.next_attempt - now), 3),
        "held": entry.held,
        "held_reason": entry.held_reason,
        "recipients": [
            {
                "address": r.address,
                "state": r.state,
                "attempts": r.attempts,
                "last_attempt": r.last_attempt,
                "last_reply": r.last_reply,
            }
            for r in entry.recipients
        ],
    }


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line (per-recipient replies).")
    ] = False,
) -> None:
    """List queued messages: id, age, size, sender, recipients, attempts, next try, held."""
    _, spool = _spool(ctx)
    entries = spool.entries()
    now = time.time()
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(entry_json(entry, now)))
        return
    if not entries:
        typer.echo("The queue is empty.")
        return
    rows = [["ID", "AGE", "SIZE", "SENDER", "RECIPIENTS", "TRIES", "NEXT", "HELD"]]
    for e in entries:
        rcpts = ", ".join(
            r.address if r.state == "pending" else f"{r.address} ({r.state})" for r in e.recipients
        )
        due = "now" if e.next_attempt <= now else "in " + human_duration(e.next_attempt - now)
        held = ("yes: " + (e.held_reason or "by operator")) if e.held else ""
        rows.append(
            [
                e.id,
                human_duration(now - e.created),
                human_size(e.size),
                e.sender or "<>",
                rcpts,
                str(e.attempts),
                "-" if e.held else due,
                held,
            ]
        )
    typer.echo(_table(rows))
    total = sum(e.size for e in entries)
    typer.echo(f"-- {len(entries)} message(s), {human_size(total)}")


def _headers(spool: Spool, queue_id: str, limit: int = 256 * 1024) -> str:
    try:
        with open(spool.message_path(queue_id), "rb") as f:
            head = f.read(limit)
    except OSError as exc:
        return f"(message file unreadable: {exc.strerror or exc})"
    end = head.find(b"\r\n\r\n")
    if end >= 0:
        head = head[:end]
    return head.decode("utf-8", "replace").replace("\r\n", "\n")


@app.command("show")
def show(
    ctx: typer.Context,
    queue_id: QueueId,
    as_json: Annotated[bool, typer.Option("--json", help="Metadata as JSON.")] = False,
) -> None:
    """Show one message's metadata, per-recipient state and header."""
    _, spool = _spool(ctx)
    entry = spool.load(queue_id)
    now = time.time()
    if as_json:
        typer.echo(json.dumps(entry_json(entry, now), indent=2))
        return
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.created))
    due = "now" if entry.next_attempt <= now else "in " + human_duration(entry.next_attempt - now)
    lines = [
        f"id:           {entry.id}",
        f"created:      {when} ({human_duration(now - entry.created)} ago)",
        f"source:       {entry.source}",
        f"sender:       {entry.sender or '<>'}",
        f"size:         {entry.size}",
        f"attempts:     {entry.attempts}",
        f"next attempt: {'held' if entry.held else due}",
    ]
    if entry.held:
        lines.append(f"held:         {entry.held_reason or 'by operator'}")
    lines.append("recipients:")
    for r in entry.recipients:
        extra = f", {r.attempts} attempt(s)" if r.attempts else ""
        lines.append(f"  {r.address}: {r.state}{extra}")
        if r.last_reply:
            lines.append(f"    last reply: {r.last_reply}")
    lines += ["", _headers(spool, entry.id)]
    typer.echo("\n".join(lines))


def _busy_message(exc: MailgwError) -> MailgwError:
    return MailgwError(f"{exc}; try again in a moment")


@app.command("flush")
def flush(
    ctx: typer.Context,
    queue_id: Annotated[str | None, typer.Argument(help="Only this entry.")] = None,
) -> None:
    """Make messages due now (a running serve picks them up within seconds)."""
    from mailgw.relay.spool import Busy

    _, spool = _spool(ctx)
    if queue_id is None:
        changed = spool.flush()
        typer.echo(f"{len(changed)} message(s) due now.")
        return
    try:
        with spool.attempt_lock(queue_id):
            entry = spool.load(queue_id)
            spool.flush(entry.id)
    except Busy as exc:
        raise _busy_message(exc) from None
    if entry.held:
        typer.echo(f"{entry.id} is held ({entry.held_reason or 'by operator'}): release it first.")
    else:
        typer.echo(f"{entry.id} due now.")


@app.command("hold")
def hold(
    ctx: typer.Context,
    queue_id: QueueId,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (shown in list).")] = None,
) -> None:
    """Hold a message: no delivery attempts until released."""
    from mailgw.relay.spool import Busy

    _, spool = _spool(ctx)
    try:
        with spool.attempt_lock(queue_id):
            entry = spool.hold(queue_id, reason or "held by operator")
    except Busy as exc:
        raise _busy_message(exc) from None
    typer.echo(f"{entry.id} held.")


@app.command("release")
def release(
    ctx: typer.Context,
    queue_id: Annotated[
        str | None, typer.Argument(help="The entry; without it every held entry.")
    ] = None,
) -> None:
    """Release held messages (one, or all: e.g. after fixing a smarthost password)."""
    from mailgw.relay.spool import Busy, QueueEntryNotFound

    _, spool = _spool(ctx)
    if queue_id is not None:
        try:
            with spool.attempt_lock(queue_id):
                entry = spool.release(queue_id)
        except Busy as exc:
            raise _busy_message(exc) from None
        typer.echo(f"{entry.id} released, due now.")
        return
    count = 0
    for entry in spool.entries():
        if not entry.held:
            continue
        try:
            with spool.attempt_lock(entry.id):
                spool.release(entry.id)
            count += 1
        except (Busy, QueueEntryNotFound):
            continue
    typer.echo(f"{count} message(s) released, due now.")


@app.command("delete")
def delete(
    ctx: typer.Context,
    queue_id: QueueId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a message from the queue (no bounce is sent)."""
    from mailgw.relay.spool import Busy

    _, spool = _spool(ctx)
    entry = spool.load(queue_id)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("deleting needs --yes when not on a terminal")
        pending = ", ".join(r.address for r in entry.pending()) or "none"
        typer.confirm(f"Delete {entry.id} from {entry.sender or '<>'} to {pending}?", abort=True)
    try:
        with spool.attempt_lock(entry.id):
            spool.remove(entry.id)
    except Busy as exc:
        raise _busy_message(exc) from None
    typer.echo(f"{entry.id} deleted.")


@app.command("run")
def run(ctx: typer.Context) -> None:
    """One delivery pass without a server (for cron); a progress bar on a terminal.

    Delivers what is due (local recipients into their mailboxes, the rest through the
    routes of relay:), retries and bounces as serve's runner does; entries that serve is
    delivering at the same moment are skipped. Quiet under cron unless -v (held routes are
    still reported on standard error).
    """
    import asyncio

    config, spool = _spool(ctx)
    try:
        from mailgw.relay.runner import QueueRunner
    except ImportError as exc:  # pragma: no cover - the runner ships with this command
        raise MailgwError(f"the queue runner is not available: {exc}") from None
    runner = QueueRunner(config, spool)
    bar: Any = None
    progress = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=0, unit="msg", desc="queue run", leave=False)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        stats = asyncio.run(runner.run_once(progress))
    finally:
        if bar is not None:
            bar.close()
    verbosity = getattr(ctx.find_root().obj, "verbosity", 0)
    held = list(getattr(stats, "held_routes", []) or [])
    if held:
        typer.echo(f"mailgw: warning: held routes: {', '.join(held)}", err=True)
    if verbosity > 0 or sys.stdout.isatty():
        fields = ("entries", "delivered", "local", "deferred", "failed", "dsns", "busy")
        typer.echo(", ".join(f"{name} {getattr(stats, name, 0)}" for name in fields))


# --- status ---------------------------------------------------------------------


def nagios_status(
    entries: list[QueueEntry],
    now: float,
    *,
    warn_count: int,
    crit_count: int,
    warn_age: float,
    crit_age: float,
) -> tuple[int, str]:
    """(exit code, the one-line Monitoring Plugins output) for the queue."""
    count = len(entries)
    oldest = max((now - e.created for e in entries), default=0.0)
    oldest = max(oldest, 0.0)
    code = NAGIOS_OK
    reasons: list[str] = []
    if count >= crit_count or oldest >= crit_age:
        code = NAGIOS_CRITICAL
    elif count >= warn_count or oldest >= warn_age:
        code = NAGIOS_WARNING
    held = [e for e in entries if e.held]
    if held:
        code = max(code, NAGIOS_WARNING)
        why = sorted({e.held_reason or "held by operator" for e in held})
        reasons.append(f"{len(held)} held ({'; '.join(why)})")
    text = f"{count} message{'s' if count != 1 else ''}"
    if count:
        text += f", oldest {human_duration(oldest)}"
    if reasons:
        text += ", " + ", ".join(reasons)
    perf = (
        f"messages={count};{warn_count};{crit_count};0 "
        f"oldest={int(oldest)}s;{int(warn_age)};{int(crit_age)};0 held={len(held)};;;0"
    )
    return code, f"QUEUE {NAGIOS_NAMES[code]} - {text} | {perf}"


@app.command("status")
def status(
    ctx: typer.Context,
    nagios: Annotated[
        bool, typer.Option("--nagios", help="Monitoring Plugins output and exit code 0/1/2/3.")
    ] = False,
    warn_count: Annotated[
        int, typer.Option("--warn-count", help="WARNING at this many messages.", min=0)
    ] = 10,
    crit_count: Annotated[
        int, typer.Option("--crit-count", help="CRITICAL at this many messages.", min=0)
    ] = 50,
    warn_age: Annotated[
        float, typer.Option("--warn-age", help="WARNING when the oldest is this old (s).", min=0)
    ] = 3600.0,
    crit_age: Annotated[
        float, typer.Option("--crit-age", help="CRITICAL when the oldest is this old (s).", min=0)
    ] = 86400.0,
) -> None:
    """Queue size and oldest message; with --nagios, for monitoring (exit 0/1/2/3).

    --nagios prints one Monitoring Plugins line with performance data, e.g.
    'QUEUE OK - 3 messages, oldest 5m | messages=3;10;50;0 oldest=300s;3600;86400;0 held=0;;;0',
    and exits 0 OK, 1 WARNING (--warn-count or --warn-age reached, or any message held),
    2 CRITICAL (--crit-count or --crit-age reached), 3 UNKNOWN (the spool cannot be read).
    """
    if crit_count < warn_count or crit_age < warn_age:
        if nagios:
            typer.echo("QUEUE UNKNOWN - critical thresholds must not be below warning ones")
            raise typer.Exit(NAGIOS_UNKNOWN)
        raise UsageError("critical thresholds must not be below the warning ones")
    try:
        _, spool = _spool(ctx)
        entries = spool.entries()
    except MailgwError as exc:
        if not nagios:
            raise
        typer.echo(f"QUEUE UNKNOWN - {exc}")
        raise typer.Exit(NAGIOS_UNKNOWN) from None
    code, line = nagios_status(
        entries,
        time.time(),
        warn_count=warn_count,
        crit_count=crit_count,
        warn_age=warn_age,
        crit_age=crit_age,
    )
    if nagios:
        typer.echo(line)
        raise typer.Exit(code)
    typer.echo(line.split(" | ", 1)[0].replace("QUEUE ", "queue: ", 1))


__all__ = ["app", "entry_json", "human_duration", "nagios_status"]
