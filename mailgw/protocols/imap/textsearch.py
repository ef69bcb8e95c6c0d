"""Message text for IMAP SEARCH: decoded headers and bodies, loaded lazily.

Theory of operation
-------------------
The string keys of SEARCH (RFC 3501 section 6.4.4: BCC, BODY, CC, FROM,
HEADER, SUBJECT, TEXT, TO) compare against the *decoded* message, as Dovecot
does, never against wire octets:

- header fields are unfolded (RFC 5322 section 2.2.3), 8-bit octets read as
  UTF-8 (RFC 6532; invalid sequences replaced), and RFC 2047 encoded words
  decoded, with the whitespace between two adjacent encoded words dropped
  (RFC 2047 section 6.2);
- the body text is every ``text/*`` leaf part (a part without Content-Type
  is text/plain, RFC 2045 section 5.2) with its Content-Transfer-Encoding
  undone (quoted-printable / base64, RFC 2045 section 6) and its charset
  decoded (unknown charsets and invalid octets fall back to UTF-8 with
  replacement); the headers of an attached ``message/rfc822`` belong to the
  body of the outer message (RFC 3501 section 6.4.4 BODY) and are included,
  decoded; other parts (images, application/*) are skipped;
- comparison is case-insensitive substring matching after Unicode NFC
  normalisation and ``str.casefold`` (:func:`fold`), applied to both sides.

:class:`LazyContent` takes a ``load() -> bytes`` callable and reads nothing
until a string key needs the message; the raw bytes, the parsed header list
and the body text are each computed once.  Nothing here raises on broken
input: a message the ``email`` package cannot walk falls back to its raw body
decoded as UTF-8.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Callable
from email import policy
from email.message import Message
from email.parser import BytesParser

__all__ = [
    "LazyContent",
    "body_text",
    "decode_encoded_words",
    "fold",
    "headers_text",
    "parse_headers",
    "split_message",
]

_MAX_DEPTH = 32  # MIME nesting we descend into; deeper parts are ignored


def fold(text: str) -> str:
    """The comparison form of a string: NFC, then Unicode full case folding."""
    return unicodedata.normalize("NFC", text).casefold()


# --- header block --------------------------------------------------------------


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """(header block, body): split at the first empty line (CRLF or bare LF).

    A message without an empty line is all header (RFC 5322 section 2.1)."""
    if raw.startswith((b"\r\n", b"\n")):
        return b"", raw[2:] if raw.startswith(b"\r\n") else raw[1:]
    m = re.search(rb"\r?\n\r?\n", raw)
    if m is None:
        return raw, b""
    return raw[: m.start()], raw[m.end() :]


def _decode_8bit(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def parse_headers(block: bytes) -> list[tuple[str, str]]:
    """(name, decoded value) for every field of a header block, in order.

    Continuation lines are unfolded (RFC 5322 2.2.3); lines that are neither a
    field nor a continuation are ignored, as Dovecot's header parser does."""
    fields: list[tuple[str, bytearray]] = []
    for line in block.split(b"\n"):
        line = line.removesuffix(b"\r")
        if line[:1] in (b" ", b"\t"):
            if fields:
                fields[-1][1].extend(line)
            continue
        name, colon, value = line.partition(b":")
        name = name.rstrip(b" \t")
        if not colon or not name or any(b <= 0x20 or b >= 0x7F for b in name):
            continue
        fields.append((name.decode("ascii"), bytearray(value)))
    return [(n, decode_encoded_words(_decode_8bit(bytes(v)).strip())) for n, v in fields]


# --- RFC 2047 encoded words ----------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_LWSP = re.compile(r"[ \t\r\n]*")


def _charset_decode(data: bytes, charset: str) -> str:
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, ValueError):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode(charset, "replace")


def _decode_word(m: re.Match[str]) -> str | None:
    charset = m.group(1).partition("*")[0]  # RFC 2231 section 5 language suffix
    text = m.group(3)
    try:
        if m.group(2) in "bB":
            data = text.encode("ascii", "ignore")
            data += b"=" * (-len(data) % 4)
            raw = base64.b64decode(data)
        else:
            raw = binascii.a2b_qp(text.encode("utf-8"), header=True)
    except (binascii.Error, ValueError):
        return None
    return _charset_decode(raw, charset)


def decode_encoded_words(text: str) -> str:
    """Decode RFC 2047 encoded words in ``text``; undecodable words stay as sent."""
    if "=?" not in text:
        return text
    out: list[str] = []
    pos = 0
    previous_word_end = -1
    for m in _ENCODED_WORD.finditer(text):
        decoded = _decode_word(m)
        if decoded is None:
            continue
        between = text[pos : m.start()]
        if not (previous_word_end == pos and _LWSP.fullmatch(between)):
            out.append(between)  # RFC 2047 6.2: drop LWSP between adjacent words only
        out.append(decoded)
        pos = previous_word_end = m.end()
    out.append(text[pos:])
    return "".join(out)


# --- body text -------------------------------------------------------------------


def headers_text(fields: list[tuple[str, str]]) -> str:
    """Decoded fields as ``Name: value`` lines (what TEXT searches besides the body)."""
    return "".join(f"{name}: {value}\n" for name, value in fields)


def _message_headers(msg: Message) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in msg.items():
        if isinstance(value, str):  # compat32 carries 8-bit octets as surrogates
            text = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            out.append((name, decode_encoded_words(" ".join(text.split()))))
    return out


def _part_text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    charset = part.get_content_charset() or "us-ascii"
    if charset in ("us-ascii", "ascii"):
        charset = "utf-8"  # 8-bit octets under a us-ascii label: read them as UTF-8
    return _charset_decode(data, charset).replace("\r\n", "\n")


def _collect(part: Message, out: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    ctype = part.get_content_type()
    payload = part.get_payload()
    if isinstance(payload, list):  # multipart/* or message/rfc822
        for sub in payload:
            if not isinstance(sub, Message):
                continue
            if ctype == "message/rfc822":
                out.append(headers_text(_message_headers(sub)))
            _collect(sub, out, depth + 1)
        return
    if part.get_content_maintype() == "text":
        out.append(_part_text(part))


def body_text(raw: bytes) -> str:
    """The decoded text of every text part of the message in ``raw`` (see module doc)."""
    try:
        msg = BytesParser(policy=policy.compat32).parsebytes(raw)
        out: list[str] = []
        _collect(msg, out, 0)
        return "\n".join(out)
    except Exception:  # the email package on hostile input: fall back to the raw body
        return _decode_8bit(split_message(raw)[1]).replace("\r\n", "\n")


# --- lazy loader -------------------------------------------------------------------


class LazyContent:
    """A message's raw bytes and decoded text, loaded on first use and cached.

    ``loads`` counts calls of ``load`` (0 until a string key needs the message)."""

    __slots__ = ("_body", "_fields", "_headers_text", "_load", "_raw", "loads")

    def __init__(self, load: Callable[[], bytes]) -> None:
        self._load = load
        self._raw: bytes | None = None
        self._fields: list[tuple[str, str]] | None = None
        self._headers_text: str | None = None
        self._body: str | None = None
        self.loads = 0

    def raw(self) -> bytes:
        if self._raw is None:
            self.loads += 1
            self._raw = self._load()
        return self._raw

    def headers_raw(self) -> bytes:
        """The header block as stored, without the separating empty line."""
        return split_message(self.raw())[0]

    def fields(self) -> list[tuple[str, str]]:
        """Every header field as (name, decoded value)."""
        if self._fields is None:
            self._fields = parse_headers(self.headers_raw())
        return self._fields

    def header(self, name: str) -> list[str]:
        """Decoded values of every field called ``name`` (case-insensitive)."""
        key = name.lower()
        return [value for n, value in self.fields() if n.lower() == key]

    def headers_text(self) -> str:
        """All decoded fields as ``Name: value`` lines (what TEXT searches besides the body)."""
        if self._headers_text is None:
            self._headers_text = headers_text(self.fields())
        return self._headers_text

    def body_text(self) -> str:
        if self._body is None:
            self._body = body_text(self.raw())
        return self._body
