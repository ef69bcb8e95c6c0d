"""``mailgw cert``: make a self-signed server certificate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mailgw.cli import common

app = typer.Typer(
    help="TLS certificates for the listeners.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("self-signed")
def self_signed(
    ctx: typer.Context,
    host: Annotated[
        list[str],
        typer.Option(
            "--host",
            help="Host name or IP address clients use (repeat for more). The first is the CN.",
            metavar="NAME",
        ),
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", help="Directory for cert.pem and key.pem [default: DATA/tls]."),
    ] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="Validity in days.")] = 825,
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
) -> None:
    """Write key.pem (mode 0600) and cert.pem; print their paths and SHA-256 fingerprint."""
    from mailgw.certs import fingerprint, write_self_signed

    if out_dir is None:
        out_dir = common.load_cli_config(ctx).data_dir / "tls"
    cert_path, key_path = write_self_signed(out_dir, host, days=days, force=force)
    typer.echo(f"certificate: {cert_path}")
    typer.echo(f"key:         {key_path}")
    typer.echo(f"SHA-256 fingerprint: {fingerprint(cert_path)}")


__all__ = ["app"]
