"""``mailgw send``: the Typer face of the sendmail-compatible entry.

The real work and the option parser live in ``mailgw.relay.sendmail``:
sendmail's options (``-t``, ``-oi``, ``-fbob@x``) do not fit Click's parser,
and ``mailgw.cli.main.main`` dispatches ``send`` there before Typer is even
imported, for a fast start.  This command is what ``mailgw --help``, the man
page and ``CliRunner`` tests see: it hands its raw arguments to the same
parser.  Exit status: sysexits codes (see ``mailgw send --help``).
"""

from __future__ import annotations

from typing import Any

import typer

HELP = (
    "Queue a message read from standard input (sendmail-compatible, for cron and scripts). "
    "Options: -t (recipients from To/Cc/Bcc; Bcc removed), -i/-oi (a '.' line does not end "
    "input), -f SENDER, -F 'Full Name', -C FILE (else $MAILGW_CONFIG); common sendmail flags "
    "are accepted and ignored. No server needs to run: the message goes into the spool, and "
    "serve's queue runner (or `mailgw queue run`) delivers it, local recipients into their "
    "mailboxes. Also installed as `mailgw-sendmail`, which can be linked as /usr/sbin/sendmail. "
    "See `mailgw send --help` for the full list. "
    "Unlike the other commands, its exit status follows sysexits.h: 0 queued durably; "
    "64 usage; 65 bad data (header address, size); 70 internal error; 73 cannot create in "
    "the spool; 75 temporary failure (disk full, ...), try again; 78 configuration error."
)
EPILOG = (
    "Exit codes (sysexits): 0 queued durably; 64 usage; 65 bad data (header address, size); "
    "70 internal error; 73 cannot create in the spool; 75 temporary failure (disk full, ...), "
    "try again; 78 configuration error."
)


def send(ctx: typer.Context) -> None:
    from mailgw.relay.sendmail import run

    state = ctx.find_root().obj
    config = getattr(state, "config_path", None)
    code = run(list(ctx.args), config=str(config) if config is not None else None)
    raise typer.Exit(code)


def register(app: Any) -> None:
    """Attach ``send`` to the root app (all its arguments pass through raw)."""
    app.command(
        "send",
        help=HELP,
        epilog=EPILOG,
        add_help_option=False,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(send)


__all__ = ["EPILOG", "HELP", "register", "send"]
