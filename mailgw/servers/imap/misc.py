"""CAPABILITY, NOOP, LOGOUT, ID, ENABLE, CHECK (RFC 3501 6.1, 6.4.1; RFC 2971; RFC 5161).

Theory of operation
-------------------
* CAPABILITY lists what this session may use now (RFC 3501 6.1.1): before
  login STARTTLS / AUTH=PLAIN or LOGINDISABLED (7.2.1), after login the
  mailbox extensions.  It is also sent in the greeting and LOGIN's OK.
* NOOP and CHECK do nothing but let the queued mailbox updates out: the view
  was synchronised before the command (RFC 3501 6.1.2, 6.4.1).
* LOGOUT sends ``* BYE`` before its tagged OK (6.1.3).
* ID (RFC 2971) answers a fixed name; the client's parameters are logged,
  truncated.
* ENABLE (RFC 5161) turns on CONDSTORE when the store keeps MODSEQs
  (RFC 7162 3.1); unknown names are ignored, as 3.1 of RFC 5161 requires.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import serializer as s
from mailgw.servers.imap.session import log

if TYPE_CHECKING:
    from mailgw.servers.imap.session import ImapSession


async def capability(sess: ImapSession, cmd: c.Capability) -> None:
    await sess.send(s.capability(sess.capabilities()))
    await sess.finish(cmd.tag, "OK", "Capability completed")


async def noop(sess: ImapSession, cmd: c.Noop) -> None:
    await sess.finish(cmd.tag, "OK", "NOOP completed")


async def check(sess: ImapSession, cmd: c.Check) -> None:
    await sess.finish(cmd.tag, "OK", "CHECK completed")


async def logout(sess: ImapSession, cmd: c.Logout) -> None:
    sess.closing = True
    await sess.send(s.bye("Logging out") + s.tagged(cmd.tag, "OK", "Logout completed"))


async def id_(sess: ImapSession, cmd: c.Id) -> None:
    if cmd.params:
        shown = ", ".join(f"{k}={(v or '')[:40]!r}" for k, v in cmd.params[:8])
        log.info("client id from %s: %s", sess.peer_ip, shown)
    await sess.send(s.data(s.Atom("ID"), ["name", "mailgw"]))
    await sess.finish(cmd.tag, "OK", "ID completed")


async def enable(sess: ImapSession, cmd: c.Enable) -> None:
    turned: list[str] = []
    for cap in cmd.capabilities:
        if cap == "CONDSTORE" and sess.condstore_supported and cap not in sess.enabled:
            sess.enabled.add(cap)
            turned.append(cap)
            if sess.selected is not None:
                sess.selected.condstore = True
    await sess.send(s.enabled(turned))
    await sess.finish(cmd.tag, "OK", "ENABLE completed")
