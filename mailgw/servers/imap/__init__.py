"""The IMAP4rev1 server: asyncio adapter, session, and one module per command family.

``adapter.py`` (listener, TLS, timeouts, the event loop of a connection),
``session.py`` (state, capabilities, dispatch), ``selected.py`` (the
selected-mailbox view), ``changes.py`` (store change events), then
``auth``, ``misc``, ``mailboxes``, ``select``, ``fetch`` + ``section``,
``store_copy``, ``append``, ``search``, ``idle``.
"""

from mailgw.servers.imap.adapter import start_imap_listener

__all__ = ["start_imap_listener"]
