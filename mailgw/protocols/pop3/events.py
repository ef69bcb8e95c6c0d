"""Events produced by ``Pop3Connection.next_event()``.

Besides the events, ``next_event()`` returns one of two flow markers:

- ``NEED_DATA``: every buffered byte has been used; call ``receive_data()``.
- ``PAUSED``: the previous event waits for the application's answer
  (``auth_ok()``, ``retr_start()`` ...); more buffered commands are kept until then,
  so reply order always equals command order (RFC 2449 section 6.6, PIPELINING).

``SendData`` carries a reply the core produced by itself; write it as is.
``Close`` ends the session after too many bad commands: write ``data``, close.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal


class Flow(enum.Enum):
    NEED_DATA = "NEED_DATA"
    PAUSED = "PAUSED"

    def __repr__(self) -> str:
        return self.value


NEED_DATA: Literal[Flow.NEED_DATA] = Flow.NEED_DATA
PAUSED: Literal[Flow.PAUSED] = Flow.PAUSED


@dataclass(frozen=True, slots=True)
class SendData:
    """A complete reply made by the core (CAPA, STAT, LIST, errors ...)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Check credentials; answer ``auth_ok()``, ``auth_failed()`` or ``auth_in_use()``.

    ``mechanism`` is ``"USER"`` (USER/PASS) or ``"PLAIN"`` (SASL, RFC 4616).
    The application must refuse a non-empty ``authzid`` other than ``username``.
    """

    mechanism: str
    username: str
    password: str = field(repr=False)
    authzid: str = ""


@dataclass(frozen=True, slots=True)
class StartTls:
    """STLS (RFC 2595 section 4).  Check ``has_buffered_data()`` first: if true,
    close the connection; else send ``starttls_ok()``, handshake, ``tls_started()``."""


@dataclass(frozen=True, slots=True)
class Retr:
    """RETR: answer ``retr_start()``, ``body()``..., ``body_end()`` (or ``retr_failed()``)."""

    msg: int
    index: int


@dataclass(frozen=True, slots=True)
class Top:
    """TOP (RFC 1939 section 7): answer ``top(message)`` (or ``retr_failed()``)."""

    msg: int
    index: int
    lines: int


@dataclass(frozen=True, slots=True)
class Update:
    """QUIT in TRANSACTION: expunge ``deleted`` (zero-based), answer ``update_done()``."""

    deleted: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Quit:
    """QUIT in AUTHORIZATION: answer ``quit_ok()`` and close."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side (or the session already ended)."""


@dataclass(frozen=True, slots=True)
class Close:
    """Too many bad commands: write ``data`` and close the connection."""

    reason: str
    data: bytes


Event = SendData | Authenticate | StartTls | Retr | Top | Update | Quit | ConnectionClosed | Close
