"""mailgw.store.wire: the CRLF (wire) size of stored messages, one cache for POP3 and IMAP."""

from __future__ import annotations

from pathlib import Path

from mailgw.store import MessageInfo, wire


def _info(path: Path, data: bytes, name: str) -> MessageInfo:
    path = path / name
    path.write_bytes(data)
    return MessageInfo(1, name, path, len(data), frozenset(), frozenset(), 0.0)


def test_name_with_matching_sizes_is_trusted_without_reading(tmp_path: Path) -> None:
    data = b"a\nb\r\n"
    info = _info(tmp_path, data, f"1.M1P1Q1.h,S={len(data)},W=99")
    assert wire.wire_size_from_name(info) == 99  # the name is believed, the file not read
    assert wire.wire_size(info) == 99


def test_name_with_a_wrong_s_is_not_trusted(tmp_path: Path) -> None:
    data = b"a\nb\r\n"
    info = _info(tmp_path, data, "2.M1P1Q1.h,S=1,W=99")
    assert wire.wire_size_from_name(info) is None
    assert wire.wire_size(info) == len(b"a\r\nb\r\n")


def test_counted_once_then_known_from_the_cache(tmp_path: Path) -> None:
    data = b"x\n" * 10 + b"y\r\n"
    info = _info(tmp_path, data, "3.M1P1Q1.h")
    assert wire.known_wire_size(info) is None
    assert wire.wire_size_of(info, data) == len(data) + 10
    info.path.unlink()  # from now on only the cache can answer
    assert wire.known_wire_size(info) == len(data) + 10
    assert wire.wire_size(info) == len(data) + 10


def test_crlf_only_file_has_its_own_size(tmp_path: Path) -> None:
    data = b"Subject: s\r\n\r\nbody\r\n"
    info = _info(tmp_path, data, "4.M1P1Q1.h")
    assert wire.wire_size(info) == info.size


def test_vanished_file_gets_its_stored_size(tmp_path: Path) -> None:
    info = MessageInfo(1, "5.M1P1Q1.h", tmp_path / "gone", 42, frozenset(), frozenset(), 0.0)
    assert wire.wire_size(info) == 42
