"""The command -> handler table of the IMAP session (one module per command family)."""

from __future__ import annotations

from typing import Any

from mailgw.protocols.imap import commands as c
from mailgw.servers.imap import auth, fetch, idle, mailboxes, misc, search, select, store_copy
from mailgw.servers.imap.session import Handler, ImapSession


async def _append(sess: ImapSession, cmd: c.Append) -> None:
    await sess.appends.append(cmd)


HANDLERS: dict[type[Any], Handler] = {
    c.Capability: misc.capability,
    c.Noop: misc.noop,
    c.Logout: misc.logout,
    c.Id: misc.id_,
    c.Enable: misc.enable,
    c.Check: misc.check,
    c.StartTls: auth.starttls,
    c.Login: auth.login,
    c.Authenticate: auth.authenticate,
    c.SaslResponse: auth.sasl_response,
    c.Select: select.select,
    c.Examine: select.examine,
    c.Close: select.close,
    c.Unselect: select.unselect,
    c.Create: mailboxes.create,
    c.Delete: mailboxes.delete,
    c.Rename: mailboxes.rename,
    c.Subscribe: mailboxes.subscribe,
    c.Unsubscribe: mailboxes.unsubscribe,
    c.List: mailboxes.list_,
    c.Lsub: mailboxes.lsub,
    c.Status: mailboxes.status,
    c.Namespace: mailboxes.namespace,
    c.Append: _append,
    c.Fetch: fetch.fetch,
    c.Search: search.search,
    c.Store: store_copy.store,
    c.Copy: store_copy.copy,
    c.Move: store_copy.move,
    c.Expunge: store_copy.expunge,
    c.Idle: idle.idle,
    c.Done: idle.done,
}
