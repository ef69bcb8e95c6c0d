"""STARTTLS, LOGIN, AUTHENTICATE PLAIN (RFC 3501 6.2, RFC 4959 SASL-IR, RFC 4616).

Theory of operation
-------------------
* On a listener that is neither TLS nor marked trusted, LOGIN and
  AUTHENTICATE are refused with ``NO [PRIVACYREQUIRED]`` without trying the
  password (RFC 3501 6.2.3 and 11.1; CAPABILITY says ``LOGINDISABLED`` and
  hides ``AUTH=``, 7.2.1).  Refusals are not counted as failures.
* Passwords go to the shared :class:`~mailgw.auth.Authenticator` (hashing in
  a worker thread, the per-IP growing failure delay shared with SMTP and
  POP3).  A failure answers ``NO [AUTHENTICATIONFAILED]`` (RFC 5530).  A
  password never reaches a log line.
* AUTHENTICATE PLAIN with SASL-IR (RFC 4959) or after an empty ``+``
  challenge; ``*`` cancels with BAD (RFC 3501 6.2.2).
* STARTTLS (RFC 3501 6.2.1): if the client pipelined anything after the
  command (in the core or in the StreamReader), the connection is closed
  instead (CVE-2011-0411).  Reading is paused before the tagged OK so the
  ClientHello reaches the TLS layer; afterwards the core forgets all
  plaintext state.
"""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING

from mailgw.auth.sasl import decode_plain
from mailgw.errors import StoreError
from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import serializer as s
from mailgw.servers.imap.session import Refusal, log

if TYPE_CHECKING:
    from mailgw.servers.imap.session import ImapSession


async def starttls(sess: ImapSession, cmd: c.StartTls) -> None:
    if not sess.starttls_available:
        raise Refusal("STARTTLS not available", status="BAD")
    ok = s.tagged(cmd.tag, "OK", "Begin TLS negotiation now")
    if not await sess.upgrade_tls(sess.conn.has_buffered_data(), ok, "STARTTLS"):
        sess.closing = True
        return
    sess.conn.tls_started()
    sess.tls_active = True
    log.info("TLS started with %s", sess.peer_ip)


def _check_allowed(sess: ImapSession) -> None:
    if not sess.auth_allowed:
        raise Refusal("Plaintext authentication disallowed; use STARTTLS", "PRIVACYREQUIRED")


async def _try(sess: ImapSession, tag: str, login: str, password: str, authzid: str = "") -> None:
    user = await sess.ctx.authenticator.authenticate(login, password, sess.peer_ip, authzid=authzid)
    if user is None:
        log.info("login failed for %r from %s", login[:64], sess.peer_ip)
        raise Refusal("Authentication failed", "AUTHENTICATIONFAILED")
    account = sess.ctx.store.account(user)
    try:
        await asyncio.to_thread(account.ensure)
    except StoreError as exc:
        log.error("cannot open the mailbox of %s: %s", user, exc)
        raise Refusal("Cannot open the mailbox", "UNAVAILABLE") from None
    sess.login(user)
    log.info("login %s from %s", user, sess.peer_ip)
    caps = "CAPABILITY " + " ".join(sess.capabilities())
    await sess.send(s.tagged(tag, "OK", "Logged in", caps))


async def login(sess: ImapSession, cmd: c.Login) -> None:
    _check_allowed(sess)
    await _try(sess, cmd.tag, cmd.userid, cmd.password)


async def authenticate(sess: ImapSession, cmd: c.Authenticate) -> None:
    if cmd.mechanism.upper() != "PLAIN":
        sess.conn.sasl_done()
        raise Refusal("Unsupported authentication mechanism", "CANNOT")
    if not sess.auth_allowed:
        sess.conn.sasl_done()
        _check_allowed(sess)
    if cmd.initial_response is None:
        await sess.send(sess.conn.sasl_continue(b""))
        return  # the client's line comes back as SaslResponse
    await _plain(sess, cmd.tag, cmd.initial_response)


async def sasl_response(sess: ImapSession, cmd: c.SaslResponse) -> None:
    if cmd.data is None:
        raise Refusal("Authentication cancelled", status="BAD")
    await _plain(sess, cmd.tag, cmd.data)


async def _plain(sess: ImapSession, tag: str, data: bytes) -> None:
    sess.conn.sasl_done()
    try:
        # the core already decoded the base64; decode_plain wants it encoded
        authzid, authcid, password = decode_plain(base64.b64encode(data))
    except ValueError:
        raise Refusal("Invalid PLAIN response", status="BAD") from None
    await _try(sess, tag, authcid, password, authzid)
