"""MessageBody / BodyWriter: canonical CRLF, hashing and spooling, whatever the chunking."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from mailgw.migrate.body import BodyWriter, MessageBody, canonical_crlf, content_hash


def reference(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\0").replace(b"\n", b"\r\n").replace(b"\0", b"\r\n")


def test_bare_lf_becomes_crlf_and_the_rest_is_kept() -> None:
    assert canonical_crlf(b"a\nb\r\nc\rd\n") == b"a\r\nb\r\nc\rd\r\n"
    assert canonical_crlf(b"\r\r\n\n") == b"\r\r\n\r\n"
    assert content_hash(b"x\n") == content_hash(b"x\r\n") == hashlib.sha256(b"x\r\n").hexdigest()


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=40).map(lambda b: bytes(b"a\r\n"[x % 3] for x in b)),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=8),
    limit=st.sampled_from([0, 3, 1 << 20]),
)
def test_any_chunking_gives_the_same_body(data: bytes, cuts: list[int], limit: int) -> None:
    w = BodyWriter(memory_limit=limit)
    pos = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        if cut > pos:
            w.write(data[pos:cut])
            pos = cut
    body = w.finish()
    expected = reference(data)
    assert body.read() == expected
    assert body.size == len(expected)
    assert body.sha256 == hashlib.sha256(expected).hexdigest()
    assert b"".join(body.chunks(7)) == expected
    body.close()


def test_big_bodies_are_spooled_to_a_file() -> None:
    w = BodyWriter(memory_limit=1024)
    for _ in range(100):
        w.write(b"line of text\r\n" * 10)
    body = w.finish()
    assert not body.in_memory
    with body.open() as a, body.open() as b:  # independent readers
        assert a.read(5) == b.read(5) == b"line "
    assert body.size == 14 * 1000
    small = MessageBody.from_bytes(b"Subject: x\n\nbody\n")
    assert small.in_memory
    assert small.header_bytes() == b"Subject: x\r\n\r\n"
