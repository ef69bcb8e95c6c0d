"""POP3 server protocol core (sans-IO).  See ``connection.py`` for the theory of operation."""

from mailgw.protocols.errors import LocalProtocolError, RemoteProtocolError
from mailgw.protocols.pop3.connection import Pop3Connection
from mailgw.protocols.pop3.events import (
    NEED_DATA,
    PAUSED,
    Authenticate,
    Close,
    ConnectionClosed,
    Event,
    Flow,
    Quit,
    Retr,
    SendData,
    StartTls,
    Top,
    Update,
)
from mailgw.protocols.pop3.state import State

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "Authenticate",
    "Close",
    "ConnectionClosed",
    "Event",
    "Flow",
    "LocalProtocolError",
    "Pop3Connection",
    "Quit",
    "RemoteProtocolError",
    "Retr",
    "SendData",
    "StartTls",
    "State",
    "Top",
    "Update",
]
