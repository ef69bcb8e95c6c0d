"""``mailgw send``: the sendmail-compatible entry for cron jobs and scripts.

Theory of operation
-------------------
``mailgw send [options] [recipient ...] < message`` reads one message from
standard input, completes its header and writes it into the relay spool
(``mailgw.relay.spool``) without a running server.  Exit status 0 means the
message is durable in the spool; serve's runner (or ``mailgw queue run``)
delivers it.  Every recipient goes into the spool, local ones included: the
runner delivers local-domain recipients into their mailboxes and relays the
rest, so aliases and catch-alls are resolved in one place.

This module is the whole fast path: ``mailgw.cli.main.main`` hands
``send`` here before importing Typer, and nothing heavier than the config
loader is imported (``bench/send_startup.py`` measures it).

Options (sendmail(8) and Postfix sendmail(1) semantics; one-letter options
may be clustered, ``-ti``; an option's value may be attached, ``-fbob@x``,
or the next argument, ``-f bob@x``; options and recipients may be mixed;
``--`` ends the options):

  -t            also take recipients from To:, Cc: and Bcc: (Resent-To/Cc/Bcc
                instead when any Resent- recipient header is present); they are
                added to the recipients given as arguments (Postfix behaviour)
  -i, -oi       a line with a single dot does not end the input
  -f ADDR, -r ADDR   envelope sender; ``<>`` or ``""`` is the null sender
  -F NAME       full name for an added From: header
  -C FILE, --config FILE   configuration file (else $MAILGW_CONFIG, else the
                embedded defaults: data dir $MAILGW_DATA or ./mailgw-data)
  -v            print the queue id on standard error
  --help        this text

Accepted and ignored: -bm, -em/-ep/-eq/-ew/-ee (-e*), -o* other than -oi
(-oem, -odb, -odi, -odq, -oee, ...), -O*, -B TYPE, -N DSN, -R RET, -V ENVID,
-X FILE, -L TAG, -h HOPS, -A*, -d*, -G, -m, -n, -U.  Refused (exit 64): other
-b modes (-bs, -bp, -bv, -bd, ...: use ``mailgw serve`` / ``mailgw queue``),
-q (use ``mailgw queue run`` / ``flush``) and unknown options.

Without ``-i`` a line holding only ``.`` ends the input; the rest is
discarded.  Line ends (LF, CRLF, CR) become CRLF.  A leading mbox ``From ``
line is dropped.  ``Bcc:`` and ``Resent-Bcc:`` fields are always removed.
Added when missing: ``From:`` (``-F`` name, ``-f`` address or the invoking
user @ the configured host name), ``Date:``, ``Message-ID:``; always
prepended: ``Received: by HOST (mailgw send, from userid UID) id ID; DATE``
(RFC 5321 section 4.4).  A bare recipient name (``alice``) is qualified with
the first local domain.

Exit status (sysexits.h, as sendmail): 0 queued durably; 64 EX_USAGE bad
options or recipient arguments, no recipients; 65 EX_DATAERR bad recipient
in a header, message larger than limits.max_message_size; 70 EX_SOFTWARE a
bug; 73 EX_CANTCREAT the spool cannot be created or written (permissions,
read-only); 75 EX_TEMPFAIL try again later (disk full, quota, I/O error,
interrupted); 78 EX_CONFIG bad configuration file.  Failures print one line
on standard error.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn, TextIO

if TYPE_CHECKING:
    from mailgw.config.schema import Config

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_SOFTWARE = 70
EX_CANTCREAT = 73
EX_TEMPFAIL = 75
EX_CONFIG = 78

USAGE = "usage: mailgw send [-t] [-i] [-f sender] [-F name] [-C config] [recipient ...] < message"
HELP_TEXT = """\
Queue one message read from standard input for delivery (sendmail-compatible).
Exit status 0 means the message is durable in the spool.

  -t                 also take recipients from To:, Cc:, Bcc: (Resent-* if present)
  -i, -oi            a line with a single dot does not end the input
  -f ADDR, -r ADDR   envelope sender ('<>' is the null sender)
  -F NAME            full name for an added From: header
  -C FILE, --config FILE
                     configuration file (else $MAILGW_CONFIG, else embedded
                     defaults with data dir $MAILGW_DATA or ./mailgw-data)
  -v                 print the queue id on standard error
  --help             this text

Accepted and ignored: -bm -e* -o* (except -oi) -O* -B TYPE -N DSN -R RET -V ENVID
-X FILE -L TAG -h HOPS -A* -d* -G -m -n -U.
Refused: other -b modes, -q (use 'mailgw queue run|flush').

Exit status: 0 queued; 64 usage; 65 bad header address or too large; 70 internal
error; 73 cannot create files in the spool; 75 temporary failure (disk full,
I/O error): try again later; 78 configuration error.
"""

# option letters that take a value (attached or the next argument); ignored unless handled
_WITH_VALUE = frozenset("fFrCBNRVXLh")
_IGNORED_FLAGS = frozenset("vGmnU")  # -v is handled, the others ignored
_REST_IGNORED = frozenset("eOAd")  # the rest of the argument is the option's value

_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
_LINE_END = re.compile(rb"\r\n|\r|\n")
_RECIPIENT_FIELDS = (b"to", b"cc", b"bcc")
_RESENT_FIELDS = (b"resent-to", b"resent-cc", b"resent-bcc")
_BCC_FIELDS = (b"bcc", b"resent-bcc")
_ATEXT_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class SendError(Exception):
    """A failure with its sysexits code; the message is one line."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class SendOptions:
    recipients: list[str] = field(default_factory=list)
    extract: bool = False  # -t
    ignore_dots: bool = False  # -i / -oi
    sender: str | None = None  # -f; "" is the null sender
    full_name: str | None = None  # -F
    config: str | None = None  # -C / --config
    verbose: bool = False  # -v
    help: bool = False
    ignored: list[str] = field(default_factory=list)


def _usage(message: str) -> SendError:
    return SendError(message, EX_USAGE)


def parse_args(argv: list[str]) -> SendOptions:
    """Parse sendmail-style arguments (see the module docstring); ``SendError`` (64)."""
    opts = SendOptions()
    args = list(argv)
    i = 0
    only_recipients = False
    while i < len(args):
        arg = args[i]
        i += 1
        if only_recipients or not arg.startswith("-") or arg == "-":
            opts.recipients.append(arg)
            continue
        if arg == "--":
            only_recipients = True
            continue
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name == "--help":
                opts.help = True
            elif name == "--config":
                if not eq:
                    if i >= len(args):
                        raise _usage("option --config needs a value")
                    value = args[i]
                    i += 1
                opts.config = value
            else:
                raise _usage(f"unknown option {arg}")
            continue
        j = 1
        while j < len(arg):
            letter = arg[j]
            rest = arg[j + 1 :]
            if letter in _WITH_VALUE:
                if rest:
                    value = rest
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    raise _usage(f"option -{letter} needs a value")
                if letter in "fr":
                    opts.sender = value
                elif letter == "F":
                    opts.full_name = value
                elif letter == "C":
                    opts.config = value
                else:
                    opts.ignored.append(f"-{letter}{value}")
                break
            if letter == "o":
                if not rest:  # "-o X": the option is the next argument
                    if i >= len(args):
                        raise _usage("option -o needs a value")
                    rest = args[i]
                    i += 1
                if rest == "i":
                    opts.ignore_dots = True
                else:
                    opts.ignored.append(f"-o{rest}")
                break
            if letter == "b":
                if rest != "m":
                    raise _usage(
                        f"-b{rest} is not supported: mailgw send only queues mail "
                        "(use mailgw serve / mailgw queue)"
                    )
                opts.ignored.append("-bm")
                break
            if letter == "q":
                raise _usage("-q is not supported: use mailgw queue run / mailgw queue flush")
            if letter in _REST_IGNORED:
                opts.ignored.append(f"-{letter}{rest}")
                break
            if letter == "t":
                opts.extract = True
            elif letter == "i":
                opts.ignore_dots = True
            elif letter == "v":
                opts.verbose = True
            elif letter in _IGNORED_FLAGS:
                opts.ignored.append(f"-{letter}")
            else:
                raise _usage(f"unknown option -{letter}")
            j += 1
    return opts


# --- addresses -----------------------------------------------------------------


def _split_list(text: str) -> list[str]:
    """Addresses in an address list (``a@x, "B" <b@y>``); groups and names dropped."""
    if "," not in text and "<" not in text and "(" not in text and '"' not in text:
        return [text.strip()] if text.strip() else []
    from email.utils import getaddresses

    return [addr for _name, addr in getaddresses([text]) if addr]


def normalize_recipient(raw: str, domain: str) -> str:
    """``<alice@Example.ORG>`` -> ``alice@example.org``; ``bob`` -> ``bob@<domain>``.

    ``ValueError`` for something that is not an address (RFC 5321 section
    4.1.2 Mailbox, lengths from section 4.5.3.1).
    """
    addr = raw.strip()
    if addr.startswith("<") and addr.endswith(">"):
        addr = addr[1:-1].strip()
    control = any(ord(c) < 32 or ord(c) == 127 for c in addr)
    if not addr or control or (" " in addr and not addr.startswith('"')):
        raise ValueError(f"bad recipient address {raw!r}")
    local, at, dom = addr.rpartition("@")
    if not at:
        local, dom = addr, domain
    if not local or not dom or len(local) > 64 or len(dom) > 255 or "@" in dom:
        raise ValueError(f"bad recipient address {raw!r}")
    if not re.fullmatch(r"[A-Za-z0-9._-]+|\[[^\[\]\s]+\]|[^\x00-\x7f.][^\s]*", dom.rstrip(".")):
        raise ValueError(f"bad recipient domain in {raw!r}")
    return f"{local}@{dom.lower()}"


def normalize_sender(raw: str) -> str:
    """The ``-f`` value as an envelope sender: ``<>``/empty is the null sender ``""``."""
    addr = raw.strip()
    if addr.startswith("<") and addr.endswith(">"):
        addr = addr[1:-1].strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in addr) or len(addr) > 320:
        raise _usage(f"bad sender address {raw!r}")
    return addr


# --- the message -----------------------------------------------------------------


def read_lines(data: bytes, ignore_dots: bool) -> list[bytes]:
    """Input lines without their line ends; without ``-i`` a ``.`` line ends the input."""
    lines = _LINE_END.split(data)
    if lines and lines[-1] == b"":
        lines.pop()  # the input ended with a line end
    if not ignore_dots and b"." in lines:
        lines = lines[: lines.index(b".")]
    return lines


def split_header(lines: list[bytes]) -> tuple[list[list[bytes]], list[bytes]]:
    """(header fields, each a list of its physical lines; body lines)."""
    start = 0
    if lines and lines[0].startswith(b"From "):
        start = 1  # mbox separator line
    fields: list[list[bytes]] = []
    i = start
    while i < len(lines):
        line = lines[i]
        if line == b"":
            return fields, lines[i + 1 :]
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        elif _HEADER_LINE.match(line):
            fields.append([line])
        else:
            break  # not a header: the body starts here (no blank line)
        i += 1
    return fields, lines[i:]


def _field_name(fld: list[bytes]) -> bytes:
    return fld[0].split(b":", 1)[0].strip().lower()


def _field_value(fld: list[bytes]) -> str:
    raw = b"".join([fld[0].split(b":", 1)[1], *fld[1:]])  # unfold (RFC 5322 section 2.2.3)
    return raw.decode("utf-8", "replace").strip()


def header_recipients(fields: list[list[bytes]]) -> list[str]:
    """Addresses from To/Cc/Bcc, or Resent-To/Cc/Bcc when any is present (``-t``)."""
    names = {_field_name(f) for f in fields}
    wanted = _RESENT_FIELDS if names & set(_RESENT_FIELDS) else _RECIPIENT_FIELDS
    result: list[str] = []
    for fld in fields:
        if _field_name(fld) in wanted:
            result.extend(_split_list(_field_value(fld)))
    return result


def rfc5322_date(when: float) -> str:
    """``Tue, 01 Jul 2025 10:00:00 +0200`` (RFC 5322 section 3.3), local time."""
    tm = time.localtime(when)
    offset = (tm.tm_gmtoff or 0) // 60
    sign = "+" if offset >= 0 else "-"
    hours, minutes = divmod(abs(offset), 60)
    return (
        f"{_DAYS[tm.tm_wday]}, {tm.tm_mday:02d} {_MONTHS[tm.tm_mon - 1]} {tm.tm_year} "
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {sign}{hours:02d}{minutes:02d}"
    )


def _display_name(name: str) -> str:
    name = " ".join(name.split())
    if not name.isascii():
        from email.header import Header

        return Header(name, "utf-8").encode()
    if _ATEXT_NAME.match(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Prepared:
    data: bytes
    recipients: list[str]


def prepare_message(
    raw: bytes,
    opts: SendOptions,
    *,
    sender: str,
    uid: int,
    hostname: str,
    queue_id: str,
    now: float,
) -> Prepared:
    """The message as it will be queued, and the recipients found by ``-t``."""
    fields, body = split_header(read_lines(raw, opts.ignore_dots))
    names = {_field_name(f) for f in fields}
    found = header_recipients(fields) if opts.extract else []
    fields = [f for f in fields if _field_name(f) not in _BCC_FIELDS]
    date = rfc5322_date(now)
    added: list[bytes] = [
        f"Received: by {hostname} (mailgw send, from userid {uid})\r\n"
        f"\tid {queue_id}; {date}".encode()
    ]
    out_fields = [b"\r\n".join(f) for f in fields]
    if b"from" not in names:
        shown = sender or f"MAILER-DAEMON@{hostname}"
        value = f"{_display_name(opts.full_name)} <{shown}>" if opts.full_name else shown
        out_fields.append(f"From: {value}".encode())
    if b"date" not in names:
        out_fields.append(f"Date: {date}".encode())
    if b"message-id" not in names:
        import secrets

        out_fields.append(f"Message-ID: <{queue_id}.{secrets.token_hex(4)}@{hostname}>".encode())
    head = b"\r\n".join([*added, *out_fields])
    data = head + b"\r\n\r\n" + b"".join(line + b"\r\n" for line in body)
    return Prepared(data=data, recipients=found)


# --- the service ---------------------------------------------------------------


def _user(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return os.environ.get("LOGNAME") or os.environ.get("USER") or f"uid{uid}"


def _load_config(path: str | None) -> Config:
    from mailgw.errors import MailgwError

    if path is None:
        path = os.environ.get("MAILGW_CONFIG") or None
    if not path:
        # what load_config(None) returns, without importing the YAML loader
        from mailgw.config.defaults import embedded_config

        return embedded_config()
    from mailgw.config.loader import load_config

    try:
        return load_config(Path(path))
    except MailgwError as exc:
        raise SendError(f"configuration: {exc}", EX_CONFIG) from None


def spool_dir_of(config: Config) -> Path:
    """The spool directory: ``config.queue_dir`` (``relay.spool_dir`` or data_dir/queue)."""
    queue_dir = getattr(config, "queue_dir", None)
    if queue_dir is not None:
        return Path(queue_dir)
    spool = getattr(getattr(config, "relay", None), "spool_dir", None)
    return Path(spool) if spool is not None else config.data_dir / "queue"


def send(opts: SendOptions, raw: bytes, *, now: float | None = None) -> str:
    """Queue one message; returns the queue id.  ``SendError`` with a sysexits code."""
    from mailgw.relay.spool import Spool, SpoolError, new_id

    config = _load_config(opts.config)
    domain = config.domains[0] if config.domains else config.hostname
    uid = os.getuid()
    if opts.sender is None:
        sender = f"{_user(uid)}@{config.hostname}"
    else:
        sender = normalize_sender(opts.sender)
    recipients: list[str] = []
    for arg in opts.recipients:
        try:
            recipients.extend(normalize_recipient(a, domain) for a in _split_list(arg))
        except ValueError as exc:
            raise _usage(str(exc)) from None
    queue_id = new_id()
    when = time.time() if now is None else now
    prepared = prepare_message(
        raw, opts, sender=sender, uid=uid, hostname=config.hostname, queue_id=queue_id, now=when
    )
    for addr in prepared.recipients:
        try:
            recipients.append(normalize_recipient(addr, domain))
        except ValueError as exc:
            raise SendError(f"{exc} in the message header", EX_DATAERR) from None
    unique = list(dict.fromkeys(recipients))
    if not unique:
        raise _usage("no recipients: give them as arguments or use -t with To/Cc/Bcc headers")
    limit = config.limits.max_message_size
    if limit and len(prepared.data) > limit:
        raise SendError(f"message too large: {len(prepared.data)} bytes, limit {limit}", EX_DATAERR)
    spool = Spool(spool_dir_of(config))
    try:
        return spool.enqueue(sender, unique, prepared.data, source="send", queue_id=queue_id)
    except SpoolError as exc:
        raise SendError(str(exc), EX_TEMPFAIL if exc.transient else EX_CANTCREAT) from None


def run(
    argv: list[str],
    *,
    stdin: BinaryIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    config: str | None = None,
    prog: str = "mailgw send",
) -> int:
    """Parse, read standard input, queue; returns the exit status (never raises)."""
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    try:
        opts = parse_args(argv)
        if opts.help:
            out.write(USAGE + "\n\n" + HELP_TEXT)
            return EX_OK
        if opts.config is None:
            opts.config = config
        source = sys.stdin.buffer if stdin is None else stdin
        queue_id = send(opts, source.read())
        if opts.verbose:
            err.write(f"{prog}: queued as {queue_id}\n")
        return EX_OK
    except SendError as exc:
        err.write(f"{prog}: {exc}\n")
        if exc.code == EX_USAGE:
            err.write(USAGE + "\n")
        return exc.code
    except KeyboardInterrupt:
        err.write(f"{prog}: interrupted, message not queued\n")
        return EX_TEMPFAIL
    except OSError as exc:
        err.write(f"{prog}: cannot read the message: {exc.strerror or exc}\n")
        return EX_TEMPFAIL
    except Exception as exc:  # a bug: still one line, and a non-zero status
        err.write(f"{prog}: internal error: {type(exc).__name__}: {exc}\n")
        return EX_SOFTWARE


def split_global(argv: list[str]) -> tuple[str | None, list[str]] | None:
    """``[global options] send ARGS`` -> (config, ARGS); None when the command is not send.

    Global options of ``mailgw`` understood here: ``-c/--config FILE``,
    ``-v``, ``-q`` (the last two do nothing for send).
    """
    config: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "send":
            return config, argv[i + 1 :]
        if arg in ("-c", "--config"):
            if i + 1 >= len(argv):
                return None
            config = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--config="):
            config = arg.split("=", 1)[1]
        elif arg.startswith("-c") and len(arg) > 2:
            config = arg[2:]
        elif arg not in ("--quiet", "--verbose") and not re.fullmatch(r"-[vq]+", arg):
            return None
        i += 1
    return None


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry for a ``sendmail``-named script (``mailgw-sendmail``)."""
    sys.exit(run(sys.argv[1:] if argv is None else argv, prog="sendmail"))


__all__ = [
    "EX_CANTCREAT",
    "EX_CONFIG",
    "EX_DATAERR",
    "EX_OK",
    "EX_SOFTWARE",
    "EX_TEMPFAIL",
    "EX_USAGE",
    "SendError",
    "SendOptions",
    "main",
    "normalize_recipient",
    "parse_args",
    "prepare_message",
    "run",
    "send",
    "split_global",
]
