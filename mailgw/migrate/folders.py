"""Which source folder goes to which destination folder.

Theory of operation.  Names are tuples of parts (the endpoints translate
separators, NAMESPACE prefixes (RFC 2342) and modified UTF-7 (RFC 3501 5.1.3)),
so the plan works on parts only.  For each source folder, in order:

1. ``--include``/``--exclude``: regexes, ``re.search`` on the ``/``-joined source
   name; a folder is taken if it matches an include (when any is given) and no
   exclude.
2. Prefix maps, longest prefix first: ``--map A/B=X/Y`` (children follow:
   ``A/B/C`` -> ``X/Y/C``); ``--dst-folder`` (the single folder of a POP3 or mbox
   file source, else the source's INBOX); then SPECIAL-USE (RFC 6154): a source
   folder with use U goes to the destination folder with use U when there is
   one (children follow), else keeps its name and the destination creates it
   with use U.
3. ``INBOX`` is case-insensitive (RFC 3501 5.1) and always spelled ``INBOX``.
4. A part containing the destination's hierarchy separator cannot be stored:
   the separator becomes ``_`` and the plan notes it.

Non-selectable source folders (``\\Noselect``) are kept in the plan with
``copy=False``: created to keep the hierarchy, never copied.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailgw.errors import UsageError
from mailgw.migrate.model import INBOX, FolderInfo, FolderName, MigrateOptions


@dataclass(frozen=True)
class FolderPair:
    source: FolderName
    destination: FolderName
    special_use: str | None  # to create the destination folder with
    copy: bool = True  # False: a non-selectable source folder, only created
    note: str | None = None  # e.g. a separator replaced in a name part

    @property
    def source_text(self) -> str:
        return "/".join(self.source)

    @property
    def destination_text(self) -> str:
        return "/".join(self.destination)


def split_name(text: str) -> FolderName:
    parts = tuple(p for p in text.strip().split("/"))
    if not text.strip() or any(not p for p in parts):
        raise UsageError(f"bad folder name {text!r} (parts separated by '/', none empty)")
    return normalize_inbox(parts)


def normalize_inbox(name: FolderName) -> FolderName:
    if name and name[0].upper() == "INBOX" and name[0] != "INBOX":
        return ("INBOX", *name[1:])
    return name


def _compile(patterns: Sequence[str], what: str) -> list[re.Pattern[str]]:
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p))
        except re.error as e:
            raise UsageError(f"bad {what} regex {p!r}: {e}") from e
    return out


def _apply_prefix(
    name: FolderName, prefixes: list[tuple[FolderName, FolderName]]
) -> tuple[FolderName, bool]:
    for src, dst in prefixes:  # longest first
        if name[: len(src)] == src:
            return (*dst, *name[len(src) :]), True
    return name, False


def plan_folders(
    source: Sequence[FolderInfo],
    destination: Sequence[FolderInfo],
    options: MigrateOptions,
    separator: str,
) -> list[FolderPair]:
    """The folder pairs to create and copy, in source order.

    ``separator``: the destination's hierarchy separator.  Raises ``UsageError``
    for a bad regex or ``--map`` entry.
    """
    includes = _compile(options.include, "--include")
    excludes = _compile(options.exclude, "--exclude")

    explicit: list[tuple[FolderName, FolderName]] = [
        (split_name(k), split_name(v)) for k, v in options.folder_map.items()
    ]
    if options.dst_folder:
        target = split_name(options.dst_folder)
        single = len(source) == 1
        origin = normalize_inbox(source[0].name) if single else INBOX
        if not any(k == origin for k, _ in explicit):
            explicit.append((origin, target))

    dst_by_use: dict[str, FolderName] = {}
    for d in destination:
        if d.special_use and d.selectable:
            dst_by_use.setdefault(d.special_use.lower(), normalize_inbox(d.name))
    special: list[tuple[FolderName, FolderName]] = []
    for s in source:
        if s.special_use and s.special_use.lower() in dst_by_use:
            special.append((normalize_inbox(s.name), dst_by_use[s.special_use.lower()]))

    explicit.sort(key=lambda kv: -len(kv[0]))
    special.sort(key=lambda kv: -len(kv[0]))

    pairs: list[FolderPair] = []
    for info in source:
        name = normalize_inbox(info.name)
        text = "/".join(name)
        if includes and not any(r.search(text) for r in includes):
            continue
        if any(r.search(text) for r in excludes):
            continue
        dest, mapped = _apply_prefix(name, explicit)
        if not mapped:
            dest, _ = _apply_prefix(name, special)
        dest = normalize_inbox(dest)
        note = None
        if separator and any(separator in part for part in dest):
            fixed = tuple(part.replace(separator, "_") for part in dest)
            note = (
                f"{'/'.join(dest)}: {separator!r} is the destination's hierarchy separator,"
                f" stored as {'/'.join(fixed)}"
            )
            dest = fixed
        pairs.append(
            FolderPair(
                source=info.name,
                destination=dest,
                special_use=info.special_use,
                copy=info.selectable,
                note=note,
            )
        )
    return pairs


__all__ = ["FolderPair", "normalize_inbox", "plan_folders", "split_name"]
