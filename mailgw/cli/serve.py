"""``mailgw serve``: run the SMTP, POP3 and IMAP listeners until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import typer

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _setup_logging(level: str, verbosity: int) -> None:
    if verbosity < 0:
        lvl = logging.ERROR
    elif verbosity > 0:
        lvl = logging.DEBUG
    else:
        lvl = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(level=lvl, format=LOG_FORMAT, stream=sys.stderr, force=True)
    # aiosmtpd logs every line of the dialogue at INFO/DEBUG (AUTH data too): keep it quiet
    logging.getLogger("mail.log").setLevel(logging.WARNING)


def serve(ctx: typer.Context) -> None:
    """Run every configured listener (SMTP, submission, POP3, IMAP) on one event loop.

    Without --config, embedded defaults are used: data in ./mailgw-data (or
    $MAILGW_DATA), SMTP on 127.0.0.1:2525, submission on 2587, POP3 on 2110,
    IMAP on 2143, a self-signed certificate made on first start. With a relay: section
    the outbound queue runner runs in the same process: mail for other domains from
    authenticated or relay_networks senders, and mail queued by `mailgw send`, is
    delivered through its routes with retries. SIGTERM finishes the transactions in
    flight and exits; SIGHUP reloads users and certificates. It prints what listens
    where (as `mailgw config check` does) once every listener is up.
    """
    from mailgw.cli.common import load_cli_config
    from mailgw.config.describe import describe
    from mailgw.servers.app import Bound, run

    config = load_cli_config(ctx)
    verbosity = ctx.obj.verbosity if ctx.obj is not None else 0
    _setup_logging(config.log_level, verbosity)
    os.makedirs(config.data_dir, mode=0o700, exist_ok=True)
    if config.tls is not None and ctx.obj is not None and ctx.obj.config_path is None:
        from mailgw.certs import ensure_self_signed

        ensure_self_signed(config.tls.cert.parent, [config.hostname, "localhost", "127.0.0.1"])

    def ready(bound: list[Bound]) -> None:
        if verbosity < 0:
            return
        typer.echo(describe(config))
        for b in bound:
            typer.echo(f"listening: {b.listener.name} ({b.listener.protocol}) on {b.host}:{b.port}")
        cfg = f" --config {ctx.obj.config_path}" if ctx.obj and ctx.obj.config_path else ""
        typer.echo(
            f"add a user with: mailgw{cfg} user add NAME   "
            f"(mail for NAME@{config.domains[0]} then lands in {config.mail_root}/NAME/Maildir)"
        )
        sys.stdout.flush()

    asyncio.run(run(config, on_ready=ready))
