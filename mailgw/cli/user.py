"""``mailgw user``: add, change, delete and list mail users.

Thin: parse options, call ``UserDB`` (and the store for the Maildir), print.
Passwords come from ``--password-file``, ``$MAILGW_PASSWORD`` or a prompt,
never from argv, and are never printed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mailgw.cli import common
from mailgw.errors import MailgwError, UsageError

if TYPE_CHECKING:
    from mailgw.auth.passwd import UserDB
    from mailgw.config.schema import Config

app = typer.Typer(
    help="Manage mail users (a Dovecot-compatible passwd-file in the data directory).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

PasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="Read the password from the first line of FILE ('-': standard input). "
        "Without it: $MAILGW_PASSWORD, else a prompt on a terminal.",
        metavar="FILE",
    ),
]


def _userdb(config: Config) -> UserDB:
    from mailgw.auth.passwd import UserDB

    return UserDB(config.passwd_path)


def _existing_user(ctx: typer.Context, name: str) -> tuple[Config, str, UserDB]:
    """(config, validated user name, user database); UserNotFound when not there."""
    from mailgw.auth.passwd import validate_username
    from mailgw.errors import UserNotFound

    config = common.load_cli_config(ctx)
    user = validate_username(name)
    db = _userdb(config)
    if not db.exists(user):
        raise UserNotFound(f"no such user: {user}")
    return config, user, db


def _ensure_maildir(config: Config, name: str) -> Path:
    """Create the user's Maildir through the store; returns it."""
    from mailgw.store import Store

    account = Store(config.mail_root).account(name)
    account.ensure()
    return Path(account.maildir)


def _user_home(config: Config, name: str) -> Path:
    from mailgw.store import Store

    return Path(Store(config.mail_root).account(name).home)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="User name (a-z 0-9 . _ -); logs in as NAME or NAME@domain.")
    ],
    password_file: PasswordFile = None,
) -> None:
    """Add a user and create its Maildir."""
    from mailgw.auth.passwd import validate_username
    from mailgw.errors import UserExists

    config = common.load_cli_config(ctx)
    user = validate_username(name)
    db = _userdb(config)
    if db.exists(user):
        raise UserExists(f"user {user} already exists")
    password = common.read_password(password_file)
    maildir = _ensure_maildir(config, user)
    db.add(user, password)
    typer.echo(f"user {user} added; mail in {maildir}")


@app.command("passwd")
def passwd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    password_file: PasswordFile = None,
) -> None:
    """Set a user's password."""
    _, user, db = _existing_user(ctx, name)
    password = common.read_password(password_file)
    db.set_password(user, password)
    typer.echo(f"password of {user} changed")


@app.command("del")
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also remove the user's mail (its whole home).")
    ] = False,
) -> None:
    """Delete a user.  Its mail stays on disk unless --purge is given."""
    config, user, db = _existing_user(ctx, name)
    home = _user_home(config, user) if purge else None
    if home is not None:
        root = Path(config.mail_root).resolve()
        if home.resolve().parent != root:
            raise UsageError(f"refusing to purge {home}: not directly under {root}")
    if not yes:
        question = f"Delete user {user}"
        question += f" and remove all its mail in {home}?" if home else " (mail is kept)?"
        if not typer.confirm(question, default=False):
            raise typer.Exit(1)
    db.delete(user)
    typer.echo(f"user {user} deleted")
    if home is not None and home.exists():
        try:
            shutil.rmtree(home)
        except OSError as exc:
            raise MailgwError(f"user deleted, but removing {home} failed: {exc}") from None
        typer.echo(f"removed {home}")


@app.command("list")
def list_users(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List users (name and password scheme)."""
    config = common.load_cli_config(ctx)
    db = _userdb(config)
    rows = [{"name": u, "scheme": db.scheme(u)} for u in db.users()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['name']}\t{row['scheme'] or '-'}")


__all__ = ["app"]
