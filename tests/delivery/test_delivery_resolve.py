"""RecipientResolver: domains, users, aliases, catch-all, postmaster."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgw.config.schema import Config
from mailgw.delivery.resolve import MAX_DEPTH, RecipientResolver


class Users:
    def __init__(self, *names: str) -> None:
        self.names = set(names)

    def exists(self, user: str) -> bool:
        return user.lower() in self.names


def make(
    *,
    users: tuple[str, ...] = ("alice", "bob"),
    aliases: dict[str, tuple[str, ...]] | None = None,
    catch_all: dict[str, str] | None = None,
    domains: tuple[str, ...] = ("example.org", "Other.Example"),
) -> RecipientResolver:
    config = Config(
        data_dir=Path("/nonexistent"),
        hostname="mx.example.org",
        domains=domains,
        listeners=(),
        aliases=aliases or {},
        catch_all=catch_all or {},
    )
    return RecipientResolver(config, Users(*users))


def test_local_user_any_case_and_domain_spelling() -> None:
    r = make()
    for addr in (
        "alice@example.org",
        "ALICE@Example.ORG",
        '"alice"@example.org',
        "bob@other.example",
    ):
        res = r.resolve(addr)
        assert res.kind == "local"
        assert res.users in (("alice",), ("bob",))
        assert res.remote == ()


def test_unknown_user() -> None:
    res = make().resolve("carol@example.org")
    assert res.kind == "unknown"
    assert res.users == () and res.remote == () and res.local_domain


def test_non_local_domain() -> None:
    res = make().resolve("someone@elsewhere.example")
    assert res.kind == "nonlocal"
    assert res.remote == ("someone@elsewhere.example",)
    assert not res.local_domain


def test_idna_domain() -> None:
    r = make(domains=("bücher.example",))
    assert r.resolve("alice@xn--bcher-kva.example").users == ("alice",)
    assert r.resolve("alice@Bücher.example").users == ("alice",)


def test_alias_list_dedup_and_recursion() -> None:
    r = make(
        aliases={
            "team@example.org": ("alice", "bob@example.org", "sales@example.org", "ALICE"),
            "sales@example.org": ("bob", "alice@example.org"),
        }
    )
    res = r.resolve("Team@example.org")
    assert res.kind == "local"
    assert res.users == ("alice", "bob")


def test_alias_loop_terminates() -> None:
    r = make(aliases={"a@example.org": ("b@example.org",), "b@example.org": ("a@example.org",)})
    assert r.resolve("a@example.org").kind == "unknown"
    r = make(
        aliases={"a@example.org": ("b@example.org", "alice"), "b@example.org": ("a@example.org",)}
    )
    assert r.resolve("b@example.org").users == ("alice",)


def test_alias_depth_limit() -> None:
    chain: dict[str, tuple[str, ...]] = {
        f"a{i}@example.org": (f"a{i + 1}@example.org",) for i in range(MAX_DEPTH + 5)
    }
    chain[f"a{MAX_DEPTH + 5}@example.org"] = ("alice",)
    assert make(aliases=chain).resolve("a0@example.org").kind == "unknown"
    short: dict[str, tuple[str, ...]] = {
        f"a{i}@example.org": (f"a{i + 1}@example.org",) for i in range(3)
    }
    short["a3@example.org"] = ("alice",)
    assert make(aliases=short).resolve("a0@example.org").users == ("alice",)


def test_alias_to_remote_and_mixed() -> None:
    r = make(
        aliases={
            "fwd@example.org": ("friend@elsewhere.example",),
            "mixed@example.org": ("alice", "friend@elsewhere.example", "friend@elsewhere.example"),
        }
    )
    res = r.resolve("fwd@example.org")
    assert res.kind == "nonlocal" and res.local_domain
    assert res.remote == ("friend@elsewhere.example",)
    res = r.resolve("mixed@example.org")
    assert res.kind == "nonlocal"
    assert res.users == ("alice",)
    assert res.remote == ("friend@elsewhere.example",)


def test_alias_to_missing_user_is_dropped() -> None:
    r = make(aliases={"x@example.org": ("ghost",)})
    assert r.resolve("x@example.org").kind == "unknown"


def test_catch_all() -> None:
    r = make(catch_all={"example.org": "bob", "other.example": "nobody@other.example"})
    res = r.resolve("whoever@example.org")
    assert res.users == ("bob",)
    # existing users still win over the catch-all
    assert r.resolve("alice@example.org").users == ("alice",)
    # catch-all pointing at an unknown address of its own domain: no loop
    assert r.resolve("x@other.example").kind == "unknown"


@pytest.mark.parametrize(
    "addr", ["postmaster@example.org", "PostMaster@Other.Example", "Postmaster"]
)
def test_postmaster_alias(addr: str) -> None:
    r = make(aliases={"postmaster@example.org": ("alice",), "postmaster@other.example": ("bob",)})
    expected = ("bob",) if "other" in addr.lower() else ("alice",)
    assert r.resolve(addr).users == expected


def test_postmaster_fallbacks() -> None:
    assert make(users=("alice", "postmaster")).resolve("postmaster@example.org").users == (
        "postmaster",
    )
    assert make(catch_all={"example.org": "bob"}).resolve("postmaster@example.org").users == (
        "bob",
    )
    # other.example has nothing for postmaster: the primary domain's alias takes it
    r = make(aliases={"postmaster@example.org": ("alice",)})
    assert r.resolve("postmaster@other.example").users == ("alice",)
    assert make().resolve("postmaster@example.org").kind == "unknown"


def test_domainless_non_postmaster_is_unknown() -> None:
    assert make().resolve("alice").kind == "unknown"
    assert make().resolve("@example.org").kind == "unknown"
