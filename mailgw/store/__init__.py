"""The only mail store API: accounts, folders, Maildir files, UIDs and flags.

Blocking; async callers run it with ``await asyncio.to_thread(...)``.  The
on-disk layout is Dovecot 2.3's Maildir++ so that Dovecot can serve a mailgw
data directory as is.  See docs/contracts.md, section "mailgw.store".
"""

from mailgw.store.account import SPECIAL_USE, Account, ListEntry
from mailgw.store.events import ChangeEvent, ChangeHub
from mailgw.store.folder import FlagUpdate, Folder, MessageInfo, ModifiedSince, StateToken
from mailgw.store.store import Store
from mailgw.store.tmpmessage import TmpMessage

__all__ = [
    "SPECIAL_USE",
    "Account",
    "ChangeEvent",
    "ChangeHub",
    "FlagUpdate",
    "Folder",
    "ListEntry",
    "MessageInfo",
    "ModifiedSince",
    "StateToken",
    "Store",
    "TmpMessage",
]
