"""Mailbox commands: CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB STATUS NAMESPACE.

Theory of operation
-------------------
Names arrive decoded (modified UTF-7, RFC 3501 5.1.3) and go to the store
unchanged: the store validates them once (``InvalidFolderName`` -> ``NO
[CANNOT]``; nothing can resolve outside the user's Maildir).  The hierarchy
separator is ``/`` (NAMESPACE, RFC 2342: one personal namespace ``""``).

* CREATE drops one trailing separator (RFC 3501 6.3.3); CREATE INBOX fails.
* DELETE of INBOX fails (6.3.4); a folder's children survive its deletion
  (Maildir++ keeps them as separate directories).
* RENAME moves the children too; RENAME INBOX moves its messages into a new
  folder and leaves INBOX empty (6.3.5) -- the store does both.
* LIST (6.3.8) matches ``*`` and ``%`` against every folder plus the implied
  parents of nested folders (``\\Noselect``).  ``INBOX`` matches case-
  insensitively (5.1).  Attributes: ``\\HasChildren``/``\\HasNoChildren``
  (RFC 3348 CHILDREN), special-use (RFC 6154), ``\\Subscribed`` and
  ``\\NonExistent`` (RFC 5258 LIST-EXTENDED: SUBSCRIBED, RECURSIVEMATCH with
  ``CHILDINFO``, SPECIAL-USE selection), ``STATUS`` after each selectable
  name for RFC 5819 LIST-STATUS.  ``LIST "" ""`` gives the delimiter.
* LSUB (6.3.9) lists subscriptions matching the pattern; a subscribed name
  that no longer exists is ``\\Noselect``.
* STATUS (6.3.10): MESSAGES, RECENT, UIDNEXT, UIDVALIDITY, UNSEEN, SIZE
  (RFC 8438) and HIGHESTMODSEQ (RFC 7162, when the store keeps MODSEQs).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mailgw.errors import StoreError
from mailgw.protocols.imap import commands as c
from mailgw.protocols.imap import serializer as s
from mailgw.servers.imap.session import Refusal
from mailgw.store import Account
from mailgw.store.account import SPECIAL_USE

if TYPE_CHECKING:
    from mailgw.servers.imap.session import ImapSession

SEP = "/"


def special_use(name: str) -> str | None:
    """The RFC 6154 attribute of a folder name (the store's mapping)."""
    return SPECIAL_USE.get(name)


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """``*`` matches anything, ``%`` anything but the separator (RFC 3501 6.3.8)."""
    if pattern.upper().startswith("INBOX") and (len(pattern) == 5 or pattern[5] in (SEP, "*", "%")):
        pattern = "INBOX" + pattern[5:]
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append(f"[^{re.escape(SEP)}]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _join(reference: str, pattern: str) -> str:
    if not reference or pattern.startswith(SEP):
        return pattern.lstrip(SEP) if not reference else pattern
    return reference + pattern


def _parents(name: str) -> list[str]:
    parts = name.split(SEP)
    return [SEP.join(parts[:i]) for i in range(1, len(parts))]


class Tree:
    """Every existing folder, the implied parents, and which have children."""

    def __init__(self, existing: Iterable[str], subscribed: Iterable[str]) -> None:
        self.existing = set(existing)
        self.subscribed = set(subscribed)
        self.implied: set[str] = set()
        self.with_children: set[str] = set()
        for name in self.existing | self.subscribed:
            for parent in _parents(name):
                if name in self.existing:
                    self.with_children.add(parent)
                if parent not in self.existing:
                    self.implied.add(parent)

    def attributes(self, name: str, *, subscribed_attr: bool) -> list[str]:
        attrs: list[str] = []
        if name not in self.existing:
            if name in self.with_children:
                attrs.append("\\Noselect")
            else:
                attrs.append("\\NonExistent")
        if name in self.existing or name in self.with_children:
            attrs.append("\\HasChildren" if name in self.with_children else "\\HasNoChildren")
        if name in self.existing:
            use = special_use(name)
            if use:
                attrs.append(use)
        if subscribed_attr and name in self.subscribed:
            attrs.append("\\Subscribed")
        return attrs


def _snapshot(account: Account) -> tuple[list[str], list[str]]:
    return account.list_folders(), account.subscriptions()


async def list_(sess: ImapSession, cmd: c.List) -> None:
    account = sess.need_account()
    if not cmd.extended and cmd.patterns == ("",):
        # RFC 3501 6.3.8: the hierarchy delimiter and the root of the reference
        root = cmd.reference.split(SEP)[0] + SEP if SEP in cmd.reference else ""
        await sess.send(s.list_(["\\Noselect"], SEP, root))
        await sess.finish(cmd.tag, "OK", "LIST completed")
        return
    existing, subs = await asyncio.to_thread(_snapshot, account)
    tree = Tree(existing, subs)
    select = set(cmd.select)
    returns = set(cmd.returns)
    want_subscribed = "SUBSCRIBED" in select or "SUBSCRIBED" in returns
    regexes = [pattern_regex(_join(cmd.reference, p)) for p in cmd.patterns if p != ""]
    subscribed_only = "SUBSCRIBED" in select
    candidates = set(tree.subscribed) if subscribed_only else tree.existing | tree.implied
    out: list[bytes] = []
    matched: list[str] = []
    for name in sorted(candidates, key=lambda n: (n != "INBOX", n)):
        if not any(rx.fullmatch(name) for rx in regexes):
            continue
        attrs = tree.attributes(name, subscribed_attr=want_subscribed)
        if "SPECIAL-USE" in select and not special_use(name):
            continue
        matched.append(name)
        out.append(s.list_(attrs, SEP, name))
    if "RECURSIVEMATCH" in select and "SUBSCRIBED" in select:
        # RFC 5258 3.5: parents (matching) of subscribed children get CHILDINFO
        for name in sorted(tree.existing | tree.implied):
            if name in matched or not any(rx.fullmatch(name) for rx in regexes):
                continue
            if any(sub.startswith(name + SEP) for sub in tree.subscribed):
                attrs = tree.attributes(name, subscribed_attr=want_subscribed)
                line = s.list_(attrs, SEP, name)[:-2] + b' ("CHILDINFO" ("SUBSCRIBED"))\r\n'
                out.append(line)
    for line in out:
        await sess.send(line)
    if cmd.status:
        for name in matched:
            if name not in tree.existing:
                continue
            try:
                items = await asyncio.to_thread(_status_items, sess, account, name, cmd.status)
            except StoreError:
                continue
            await sess.send(s.status(name, items))
    await sess.finish(cmd.tag, "OK", "LIST completed")


async def lsub(sess: ImapSession, cmd: c.Lsub) -> None:
    account = sess.need_account()
    if cmd.pattern == "":
        await sess.send(s.list_(["\\Noselect"], SEP, "", kind="LSUB"))
        await sess.finish(cmd.tag, "OK", "LSUB completed")
        return
    existing, subs = await asyncio.to_thread(_snapshot, account)
    rx = pattern_regex(_join(cmd.reference, cmd.pattern))
    present = set(existing)
    for name in subs:
        if rx.fullmatch(name):
            attrs = [] if name in present else ["\\Noselect"]
            await sess.send(s.list_(attrs, SEP, name, kind="LSUB"))
    await sess.finish(cmd.tag, "OK", "LSUB completed")


def _status_items(
    sess: ImapSession, account: Account, name: str, wanted: Iterable[str]
) -> list[tuple[str, int]]:
    folder = account.folder(name)
    infos = folder.messages()
    values: list[tuple[str, int]] = []
    for item in wanted:
        if item == "MESSAGES":
            values.append((item, len(infos)))
        elif item == "RECENT":
            values.append((item, sum(1 for i in infos if i.path.parent.name == "new")))
        elif item == "UIDNEXT":
            values.append((item, folder.uidnext))
        elif item == "UIDVALIDITY":
            values.append((item, folder.uidvalidity))
        elif item == "UNSEEN":
            values.append((item, sum(1 for i in infos if "\\Seen" not in i.flags)))
        elif item == "SIZE":
            values.append((item, sum(i.size for i in infos)))
        elif item == "HIGHESTMODSEQ" and sess.condstore_supported:
            values.append((item, folder.highestmodseq))
    return values


async def status(sess: ImapSession, cmd: c.Status) -> None:
    account = sess.need_account()
    items = await asyncio.to_thread(_status_items, sess, account, cmd.mailbox, cmd.items)
    await sess.send(s.status(cmd.mailbox, items))
    await sess.finish(cmd.tag, "OK", "STATUS completed")


async def create(sess: ImapSession, cmd: c.Create) -> None:
    account = sess.need_account()
    name = cmd.mailbox[:-1] if cmd.mailbox.endswith(SEP) else cmd.mailbox
    if name.upper() == "INBOX":
        raise Refusal("INBOX already exists", "ALREADYEXISTS")
    await asyncio.to_thread(account.create_folder, name)
    await sess.finish(cmd.tag, "OK", "CREATE completed")


async def delete(sess: ImapSession, cmd: c.Delete) -> None:
    account = sess.need_account()
    if cmd.mailbox == "INBOX":
        raise Refusal("INBOX cannot be deleted", "CANNOT")
    if sess.selected is not None and sess.selected.folder.name == cmd.mailbox:
        sess.deselect()  # RFC 3501 does not say; Dovecot closes it as well
        await sess.send(s.untagged("OK", "Mailbox deleted", "CLOSED"))
    await asyncio.to_thread(account.delete_folder, cmd.mailbox)
    await sess.finish(cmd.tag, "OK", "DELETE completed")


async def rename(sess: ImapSession, cmd: c.Rename) -> None:
    account = sess.need_account()
    if cmd.old == cmd.new:
        raise Refusal("Mailbox already exists", "ALREADYEXISTS")
    await asyncio.to_thread(account.rename_folder, cmd.old, cmd.new)
    await sess.finish(cmd.tag, "OK", "RENAME completed")


async def subscribe(sess: ImapSession, cmd: c.Subscribe) -> None:
    account = sess.need_account()
    await asyncio.to_thread(account.subscribe, cmd.mailbox)
    await sess.finish(cmd.tag, "OK", "SUBSCRIBE completed")


async def unsubscribe(sess: ImapSession, cmd: c.Unsubscribe) -> None:
    account = sess.need_account()
    await asyncio.to_thread(account.unsubscribe, cmd.mailbox)
    await sess.finish(cmd.tag, "OK", "UNSUBSCRIBE completed")


async def namespace(sess: ImapSession, cmd: c.Namespace) -> None:
    await sess.send(s.data(s.Atom("NAMESPACE"), [["", SEP]], None, None))
    await sess.finish(cmd.tag, "OK", "NAMESPACE completed")
