"""Message data as it crosses DATA: line endings and dot-stuffing.

Theory of operation
-------------------
* In SMTP, CRLF is the only line ending (RFC 5321 section 2.3.8: a bare CR or
  bare LF MUST NOT be sent and must not be treated as a line ending).  Mail
  servers that disagree on this are the root of SMTP smuggling (a ``\\n.\\r\\n``
  ends DATA for one server and not for the next).  The server rejects any
  message containing a bare CR or LF (``find_bare_cr_lf``); aiosmtpd >= 1.4.6
  itself only ends DATA on ``\\r\\n.\\r\\n``.
* ``to_crlf`` turns every bare CR, bare LF (and CRLF) into CRLF, for content
  we generate or normalise on purpose.
* Dot-stuffing (RFC 5321 section 4.5.2): a line starting with ``.`` gets one
  more ``.`` on the wire; the terminator is ``.\\r\\n`` on a line of its own.
  ``dot_stuff`` produces wire data for a relay client (always CRLF-terminated);
  ``dot_unstuff`` is the receiver side, for tests and tools.
"""

from __future__ import annotations

import re

_BARE_CR_LF = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_ANY_EOL = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)

CRLF = b"\r\n"
END_OF_DATA = b".\r\n"


def find_bare_cr_lf(data: bytes) -> int | None:
    """Offset of the first CR not followed by LF, or LF not preceded by CR."""
    m = _BARE_CR_LF.search(data)
    return None if m is None else m.start()


def to_crlf(data: bytes) -> bytes:
    """Every line ending (CRLF, bare CR, bare LF) becomes CRLF."""
    return _ANY_EOL.sub(CRLF, data)


def dot_stuff(data: bytes) -> bytes:
    """Wire form of a message body for DATA, terminator included.

    Line endings are made canonical first, a missing final CRLF is added,
    every line starting with ``.`` gets another ``.``.
    """
    data = to_crlf(data)
    if data and not data.endswith(CRLF):
        data += CRLF
    return _LEADING_DOT.sub(b"..", data) + END_OF_DATA


def dot_unstuff(wire: bytes) -> bytes:
    """Inverse of ``dot_stuff`` for CRLF data (the terminator line is optional)."""
    lines = wire.split(CRLF)
    out: list[bytes] = []
    for line in lines[:-1]:  # the last element is what follows the final CRLF
        if line == b".":
            break
        out.append(line[1:] if line.startswith(b".") else line)
    return b"".join(line + CRLF for line in out)
