"""IDLE (RFC 2177).

Theory of operation
-------------------
``IDLE`` answers ``+ idling`` and the session enters idle mode; the adapter
then waits for the client's ``DONE`` line, a store change event
(``changes.py``), or the poll interval, whichever comes first.  On each
wake-up the selected view is synchronised and its updates are sent at once
(EXISTS, EXPUNGE and FETCH FLAGS are all allowed while idling: RFC 2177
section 3, the IDLE command is still in progress).  ``DONE`` ends the
command with its tagged OK.  The autologout timer (at least 30 minutes,
RFC 3501 5.4) applies to an idling client too: RFC 2177 asks clients to
re-issue IDLE at least every 29 minutes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import serializer as s

if TYPE_CHECKING:
    from mailgw.servers.imap.session import ImapSession


async def idle(sess: ImapSession, cmd: c.Idle) -> None:
    sess.idle_tag = cmd.tag
    await sess.send(sess.updates(True) + s.continuation("idling"))


async def done(sess: ImapSession, cmd: c.Done) -> None:
    sess.idle_tag = None
    await sess.sync()
    await sess.finish(cmd.tag, "OK", "IDLE terminated")
