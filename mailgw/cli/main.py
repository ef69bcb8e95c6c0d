"""The ``mailgw`` command: global options, sub-command wiring, error mapping.

This module is thin on purpose: each command group lives in its own module
and calls a service; every ``MailgwError`` is turned into a message and an
exit code here, in ``main()``, and nowhere else.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from mailgw import __version__
from mailgw.errors import EXIT_USAGE, MailgwError

EPILOG = (
    "Exit codes: 0 success; 1 the operation failed; 2 usage or configuration error; "
    "3 network error (cannot listen or connect)."
)

app = typer.Typer(
    name="mailgw",
    help="Mail gateway for small offices: SMTP, POP3 and IMAP over one Maildir store.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@dataclass
class CliState:
    config_path: Path | None = None
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mailgw {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="MAILGW_CONFIG",
            help="Configuration file (YAML). Without it, embedded defaults are used.",
        ),
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More output.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = CliState(config_path=config, verbosity=-1 if quiet else verbose)


def _register() -> None:
    """Attach the command groups.  Imports stay cheap: heavy work is lazy."""
    from mailgw.cli import cert, config, serve, user

    app.add_typer(user.app, name="user")
    app.add_typer(config.app, name="config")
    app.add_typer(cert.app, name="cert")
    app.command("serve", epilog=EPILOG)(serve.serve)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, map domain errors to exit codes."""
    try:
        app(args=argv, prog_name="mailgw", standalone_mode=True)
    except MailgwError as exc:
        typer.echo(f"mailgw: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("mailgw: interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except OSError as exc:  # an I/O failure not wrapped by a service
        typer.echo(f"mailgw: error: {exc}", err=True)
        sys.exit(1)


__all__ = ["EPILOG", "EXIT_USAGE", "CliState", "app", "main"]
