"""User and folder names: validation and the Maildir++ on-disk mapping.

Folder names in the API are Unicode with "/" as the hierarchy separator
("INBOX", "Sent", "Projects/2024").  On disk, as Dovecot 2.3 lays out Maildir++
(``mail_location = maildir:~/Maildir``, the default layout):

* ``INBOX`` (any case) is the Maildir root itself; other folders are
  directories ``Maildir/.<part>.<part>`` directly under the root.
* Each part is encoded in IMAP modified UTF-7 (RFC 3501 5.1.3), so
  ``Données`` is ``.Donn&AOk-es``; ``.`` joins the parts.
* ``.`` cannot be escaped: Dovecot 2.3 refuses such names ("Character not
  allowed in mailbox name: '.'"), and so do we.  Dovecot also refuses names
  beginning with ``~`` or the separator, adjacent separators and control
  characters; we refuse those too, plus a ``~`` at the start of any part.
* A first part equal to ``INBOX`` in any case is written ``INBOX``
  (``inbox/bar`` is ``.INBOX.bar``), as Dovecot does.

Validation happens here, once; :func:`folder_dir` also checks that the
resolved directory is a direct child of the Maildir.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from mailgw.errors import InvalidFolderName, InvalidUserName
from mailgw.protocols.imap.utf7 import decode_mutf7, encode_mutf7

USER_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
SEPARATOR = "/"
MAX_FOLDER_NAME = 255


def validate_user(user: str) -> str:
    """Return the user name, or raise InvalidUserName (docs/contracts.md regex)."""
    if not isinstance(user, str) or not USER_RE.fullmatch(user):
        raise InvalidUserName(f"invalid user name: {user!r}")
    return user


def _bad(name: str, why: str) -> InvalidFolderName:
    return InvalidFolderName(f"invalid folder name {name!r}: {why}")


def normalize_folder(name: str) -> str:
    """Validate an API folder name and return its canonical form."""
    if not isinstance(name, str) or name == "":
        raise _bad(str(name), "empty")
    if len(name) > MAX_FOLDER_NAME:
        raise _bad(name[:40] + "...", "too long")
    if name.startswith(SEPARATOR):
        raise _bad(name, "begins with the hierarchy separator")
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cs") or ch == "\x7f":
            raise _bad(name, "control characters are not allowed")
    if "." in name:
        raise _bad(name, "'.' is not allowed (Maildir++ hierarchy separator)")
    parts = name.split(SEPARATOR)
    for part in parts:
        if part == "":
            raise _bad(name, "empty hierarchy level")
        if part.startswith("~"):
            raise _bad(name, "a level begins with '~'")
    if parts[0].upper() == "INBOX":
        parts[0] = "INBOX"
    return SEPARATOR.join(parts)


def is_inbox(name: str) -> bool:
    return name == "INBOX"


def disk_name(name: str) -> str:
    """On-disk directory name (``.Projects.2024``) of a canonical non-INBOX name."""
    return "." + ".".join(encode_mutf7(part) for part in name.split(SEPARATOR))


def name_from_disk(dirname: str) -> str | None:
    """API name of a Maildir++ folder directory, or None if it is not one."""
    if not dirname.startswith(".") or dirname.startswith("..") or len(dirname) < 2:
        return None
    try:
        parts = [decode_mutf7(p) for p in dirname[1:].split(".")]
        return normalize_folder(SEPARATOR.join(parts))
    except (ValueError, InvalidFolderName):
        return None


def folder_dir(maildir: Path, name: str) -> Path:
    """Directory of canonical folder ``name``; refuses anything outside ``maildir``."""
    if is_inbox(name):
        return maildir
    path = maildir / disk_name(name)
    real_root = os.path.realpath(maildir)
    real = os.path.realpath(path)
    if os.path.dirname(real) != real_root:
        raise _bad(name, "resolves outside the Maildir")
    return path


def subscription_line(name: str) -> str:
    """Dovecot's subscriptions entry: mUTF-7 parts joined by TAB."""
    return "\t".join(encode_mutf7(part) for part in name.split(SEPARATOR))


def name_from_subscription(line: str) -> str | None:
    try:
        return normalize_folder(SEPARATOR.join(decode_mutf7(p) for p in line.split("\t")))
    except (ValueError, InvalidFolderName):
        return None
