"""COPY between folders (RFC 3501 6.4.7) with the new UIDs at once (RFC 4315 COPYUID).

Theory of operation (Dovecot's maildir copy does the same):

* The source messages are looked up under the source folder's lock, which is
  then released: a COPY never holds two folders' locks, so COPY A->B and
  B->A at the same time cannot deadlock.
* Each file is hard-linked straight to its final name in the destination
  (``new/<key>`` without flags, so the copy is \\Recent; ``cur/<key>:2,<letters>``
  with them) while the destination's ``dovecot-uidlist.lock`` is held, and
  its uidlist line appended; the directories are fsynced before the lock is
  released.  The key is fresh (new unique base, same ``,S=``/``,W=``), the
  inode and so the internal date (mtime) are shared.
* Keyword letters are per folder: they are translated through the
  destination's dovecot-keywords.  Unknown upper-case letters are kept.
* If the source file was renamed meanwhile (a flag change), it is looked up
  again without a lock; if it is gone, that UID is left out of the result.
  Across filesystems (EXDEV and friends) the file is copied into the
  destination's ``tmp/``, fsynced, given the source's mtime and renamed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mailgw.store import filenames as fn
from mailgw.store.uidlist import keyword_letter

if TYPE_CHECKING:
    from mailgw.store.folder import Folder

_LINK_FALLBACK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}


def _letters_of(filename: str) -> str:
    return fn.info_letters(fn.split_filename(filename)[1])


def find_file(folder: Folder, key: str) -> Path | None:
    """Where the file of ``key`` is now (a lock-free look at cur/ and new/)."""
    for sub in ("cur", "new"):
        with contextlib.suppress(FileNotFoundError), os.scandir(folder.path / sub) as it:
            for entry in it:
                if fn.split_filename(entry.name)[0] == key:
                    return Path(entry.path)
    return None


def _copy_file(path: Path, dest: Path) -> None:
    """Copy across filesystems: dest's tmp/, fsync, source mtime, rename into place."""
    tmp = dest.parent.parent / "tmp" / dest.name.split(":", 1)[0]
    try:
        shutil.copyfile(path, tmp)
        st = os.stat(path)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.utime(tmp, (st.st_atime, st.st_mtime))
        os.rename(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _linker(src: Folder, key: str, first: Path) -> Callable[[Path], bool]:
    def place(dest: Path) -> bool:
        path: Path | None = first
        for _ in range(3):
            if path is None:
                return False
            try:
                try:
                    os.link(path, dest)
                except OSError as exc:
                    if exc.errno == errno.ENOENT or exc.errno not in _LINK_FALLBACK:
                        raise
                    _copy_file(path, dest)
                return True
            except FileNotFoundError:
                path = find_file(src, key)  # renamed by a flag change meanwhile
        return False

    return place


def copy_messages(src: Folder, dst: Folder, uids: Iterable[int]) -> list[tuple[int, int]]:
    """Copy ``uids`` of ``src`` into ``dst``; (source UID, new UID) in source UID order."""
    wanted = set(uids)
    picked = [m for m in src.messages() if m.uid in wanted]
    if not picked:
        return []
    with src._lock:
        src_kw = {keyword_letter(i): n for i, n in src._kw_by_index.items()}
        paths: dict[str, Path] = {}
        for m in picked:
            loc = src._where.get(m.key)
            paths[m.key] = src.path / loc[0] / loc[1] if loc else m.path
    all_kw = frozenset(k for m in picked for k in m.keywords)
    with dst._lock:
        letters = dst._allocate_keywords(all_kw)
    items: list[tuple[str, Path, Callable[[Path], bool]]] = []
    for m in picked:
        size, vsize = fn.base_sizes(m.key)
        if size is None or vsize is None:
            data = src.read(m)
            size, vsize = len(data), fn.virtual_size(data)
        key = fn.with_sizes(fn.new_base(), size, vsize)
        old = _letters_of(paths[m.key].name)
        kept = [c for c in old if c.isupper() and c not in fn.LETTER_TO_FLAG]
        flags, kws = fn.decode_letters(old, src_kw)
        new_letters = fn.encode_letters("".join(kept), flags, [letters[k] for k in kws], ())
        dest = (
            dst.path / "cur" / fn.format_filename(key, new_letters)
            if new_letters
            else dst.path / "new" / key
        )
        items.append((key, dest, _linker(src, m.key, paths[m.key])))
    new_uids = dst._add_with_uids(items)
    return [(m.uid, u) for m, u in zip(picked, new_uids, strict=True) if u is not None]
