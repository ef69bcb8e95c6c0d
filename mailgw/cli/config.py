"""``mailgw config``: check a configuration file, print the example.

Thin: the loader validates, ``describe`` renders; a ``ConfigError`` is
raised and turned into exit code 2 by ``mailgw.cli.main``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mailgw.config.defaults import example_text
from mailgw.config.describe import describe
from mailgw.config.loader import load_config

app = typer.Typer(
    name="config",
    help="Check configuration files and print an example.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@app.command("check")
def check(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Configuration file to check. Default: the global --config "
            "(or $MAILGW_CONFIG); without either, the embedded defaults.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Validate a configuration file and show what would listen where.

    Prints "OK: FILE" and a table of listeners with their TLS mode and
    authentication policy. Exits with status 2 and a message naming the
    file, line and key if the configuration is wrong.
    """
    path = file if file is not None else getattr(ctx.obj, "config_path", None)
    config = load_config(path)
    typer.echo(f"OK: {config.source}")
    typer.echo(describe(config))


@app.command("example")
def example() -> None:
    """Print a commented example configuration for a small office.

    Save it, adjust domains, addresses and certificate paths, then run
    "mailgw config check FILE".
    """
    typer.echo(example_text(), nl=False)
