"""Helpers shared by the command modules: passwords and the configuration.

Passwords never come from argv (they would show in ``ps`` and shell history).
``read_password`` takes them, in this order, from ``--password-file`` (first
line; ``-`` is standard input), an environment variable, or a terminal prompt
asked twice.  With none of these it fails instead of hanging on a pipe.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from mailgw.errors import PasswordError

if TYPE_CHECKING:
    from mailgw.config.schema import Config

PASSWORD_ENV = "MAILGW_PASSWORD"


def _first_line(text: str) -> str:
    line = text.split("\n", 1)[0]
    return line[:-1] if line.endswith("\r") else line


def read_password(
    password_file: Path | None, env_var: str = PASSWORD_ENV, confirm: bool = True
) -> str:
    """The password from the file, ``$env_var`` or a TTY prompt; else ``PasswordError``."""
    if password_file is not None:
        try:
            if str(password_file) == "-":
                password = _first_line(sys.stdin.readline())
            else:
                with open(password_file, encoding="utf-8") as f:
                    password = _first_line(f.readline())
        except OSError as exc:
            raise PasswordError(
                f"cannot read password file {password_file}: {exc.strerror or exc}"
            ) from None
        except UnicodeDecodeError:
            raise PasswordError(f"password file {password_file} is not UTF-8") from None
        if not password:
            raise PasswordError(f"password file {password_file} has an empty first line")
        return password
    from_env = os.environ.get(env_var)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise PasswordError(
            f"no password given: use --password-file FILE (or - for stdin), set ${env_var}, "
            "or run on a terminal to be prompted"
        )
    password = getpass.getpass("Password: ")
    if not password:
        raise PasswordError("empty password")
    if confirm and getpass.getpass("Repeat password: ") != password:
        raise PasswordError("the passwords do not match")
    return password


def load_cli_config(ctx: typer.Context) -> Config:
    """The configuration for a command: ``--config``/``$MAILGW_CONFIG`` or the defaults."""
    from mailgw.config.loader import load_config

    state = ctx.find_root().obj if ctx.obj is None else ctx.obj
    path = getattr(state, "config_path", None)
    return load_config(path)


__all__ = ["PASSWORD_ENV", "load_cli_config", "read_password"]
