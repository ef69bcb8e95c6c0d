"""The only mail store API: accounts, folders, Maildir files, UIDs and flags.

Blocking; async callers run it with ``await asyncio.to_thread(...)``.  The
on-disk layout is Dovecot 2.3's Maildir++ so that Dovecot can serve a mailgw
data directory as is.  See docs/contracts.md, section "mailgw.store".
"""

from mailgw.store.account import Account
from mailgw.store.folder import Folder, MessageInfo, TmpMessage
from mailgw.store.store import Store

__all__ = ["Account", "Folder", "MessageInfo", "Store", "TmpMessage"]
