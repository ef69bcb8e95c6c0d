"""The ``mailgw`` command: global options, sub-command wiring, error mapping.

This module is thin on purpose: each command group lives in its own module
and calls a service; every ``MailgwError`` is turned into a message and an
exit code here, in ``main()``, and nowhere else.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from mailgw import __version__
from mailgw.errors import EXIT_USAGE, MailgwError

if TYPE_CHECKING:
    import typer

# Typer is imported when the app is first needed (``_build_app``), not here:
# ``mailgw send`` is dispatched by ``main()`` before that and must start fast
# (bench/send_startup.py).  ``app`` is a lazy module attribute (PEP 562).

EPILOG = (
    "Exit codes: 0 success; 1 the operation failed; 2 usage or configuration error; "
    "3 network error (cannot listen or connect)."
)

app: typer.Typer  # built on first use by _build_app()


@dataclass
class CliState:
    config_path: Path | None = None
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mailgw {__version__}")
        raise typer.Exit()


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
    from mailgw.cli import cert, config, migrate, probe, queue, send, serve, user

    app.add_typer(user.app, name="user")
    app.add_typer(config.app, name="config")
    app.add_typer(cert.app, name="cert")
    app.command("serve", epilog=EPILOG)(serve.serve)
    app.add_typer(queue.app, name="queue")
    send.register(app)
    migrate.register(app)
    probe.register(app)


def _build_app() -> typer.Typer:
    """Import Typer, make the app and attach the command groups (once)."""
    global app, typer
    if "app" in globals():
        return app
    import typer

    app = typer.Typer(
        name="mailgw",
        help="Mail gateway for small offices: SMTP, POP3 and IMAP over one Maildir store.",
        epilog=EPILOG,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    app.callback()(_global)
    _register()
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        return _build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, map domain errors to exit codes.

    ``[global options] send ...`` goes to the lean sendmail-compatible parser
    before Typer is imported (exit codes: sysexits, see ``mailgw send --help``).
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if "send" in args:
        from mailgw.relay.sendmail import run, split_global

        split = split_global(args)
        if split is not None:
            sys.exit(run(split[1], config=split[0]))
    try:
        _build_app()(args=args, prog_name="mailgw", standalone_mode=True)
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
