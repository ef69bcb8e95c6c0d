"""Routes, the router, and target resolution (smarthost list; MX through a private dnsmasq)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailgw.errors import ConfigError
from mailgw.relay.routing import (
    NoRoute,
    Route,
    Router,
    RoutingError,
    Target,
    resolve_targets,
    split_host_port,
)
from tests.interop.dnsserver import DnsmasqServer
from tests.interop.peers import PeerUnavailable

# --- Route and Router ----------------------------------------------------------------


def test_route_defaults_per_kind() -> None:
    assert Route("relay", kind="smarthost", hosts=("smtp.example.net",)).port == 587
    mx = Route("direct", kind="mx")
    assert mx.port == 25
    assert (mx.tls, mx.tls_required, mx.tls_verify) == ("starttls", True, True)
    assert (mx.max_per_connection, mx.concurrency) == (50, 4)
    assert mx.domains == ("*",)
    assert Route("s", hosts=("h",), tls="implicit").port == 465
    assert Route("m", kind="mx", domains=()).domains == ("*",)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "uucp"},
        {"kind": "mx", "tls": "maybe"},
        {"kind": "smarthost"},  # no hosts
        {"kind": "mx", "password_file": Path("/x"), "password_env": "X"},
        {"kind": "mx", "concurrency": 0},
        {"kind": "smarthost", "hosts": ("relay:99999",)},
    ],
)
def test_route_rejects_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Route("bad", **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class FakeRouteConfig:
    """Stands in for the config schema's RouteConfig: same field names."""

    name: str
    kind: str = "smarthost"
    hosts: list[str] = field(default_factory=list)
    port: int | None = None
    tls: str = "implicit"
    tls_required: bool = True
    tls_verify: bool = False
    ca_file: str | None = "/etc/ssl/ca.pem"
    username: str | None = "gw"
    password_file: str | None = None
    password_env: str | None = "RELAY_PW"
    domains: list[str] = field(default_factory=lambda: ["*"])
    max_per_connection: int = 10
    concurrency: int = 2


def test_route_from_config_reads_attributes() -> None:
    route = Route.from_config(FakeRouteConfig("isp", hosts=["a.example:465", "b.example"]))
    assert route == Route(
        "isp",
        kind="smarthost",
        hosts=("a.example:465", "b.example"),
        port=465,  # implicit TLS
        tls="implicit",
        tls_verify=False,
        ca_file=Path("/etc/ssl/ca.pem"),
        username="gw",
        password_env="RELAY_PW",
        domains=("*",),
        max_per_connection=10,
        concurrency=2,
    )
    assert Route.from_config(route) is route


def test_router_exact_then_default() -> None:
    partner = Route("partner", kind="mx", domains=("Partner.Example", "bücher.example"))
    isp = Route("isp", hosts=("smtp.isp.example",), domains=("*",))
    router = Router([partner, isp])
    assert router.route_for("partner.example") is partner
    assert router.route_for("PARTNER.example.") is partner
    assert router.route_for("xn--bcher-kva.example") is partner  # IDNA A-label
    assert router.route_for("bücher.example") is partner
    assert router.route_for("sub.partner.example") is isp  # no parent-domain match
    assert router.route_for("elsewhere.org") is isp


def test_router_without_default_raises_permanent_noroute() -> None:
    router = Router([Route("partner", kind="mx", domains=("partner.example",))])
    with pytest.raises(NoRoute) as info:
        router.route_for("other.example")
    assert info.value.permanent
    assert info.value.reply.startswith("550 5.4.4")


def test_router_accepts_relay_config_object_and_rejects_duplicates() -> None:
    @dataclass
    class Relay:
        routes: tuple[FakeRouteConfig, ...]

    router = Router(Relay((FakeRouteConfig("a", hosts=["h"], domains=["x.example"]),)))
    assert router.route_for("x.example").name == "a"
    with pytest.raises(ConfigError):
        Router([Route("a", kind="mx"), Route("b", kind="mx")])  # two defaults
    with pytest.raises(ConfigError):
        Router(
            [
                Route("a", kind="mx", domains=("d.example",)),
                Route("b", kind="mx", domains=("D.example",)),
            ]
        )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("smtp.example", ("smtp.example", 587)),
        ("smtp.example:2525", ("smtp.example", 2525)),
        ("[::1]:2525", ("::1", 2525)),
        ("[::1]", ("::1", 587)),
        ("::1", ("::1", 587)),
        ("127.0.0.1:25", ("127.0.0.1", 25)),
    ],
)
def test_split_host_port(entry: str, expected: tuple[str, int]) -> None:
    assert split_host_port(entry, 587) == expected


def test_smarthost_targets_in_order_with_ports() -> None:
    route = Route("isp", hosts=("primary.example", "backup.example:2525"), port=465)
    targets = asyncio.run(resolve_targets(route, "anything.example", None))
    assert targets == [Target("primary.example", 465), Target("backup.example", 2525)]
    assert targets[0].server_name == "primary.example"


def test_address_literal_domain_is_its_own_target() -> None:
    route = Route("direct", kind="mx", port=2525)
    targets = asyncio.run(resolve_targets(route, "[127.0.0.1]", None))
    assert targets == [Target("127.0.0.1", 2525)]


# --- MX through a private DNS server --------------------------------------------------


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsmasqServer]:
    try:
        server = DnsmasqServer(
            mx={
                "pref.test": [
                    (20, "mx20.pref.test"),
                    (10, "mx10.pref.test"),
                    (30, "mx30.pref.test"),
                ],
                "equal.test": [(10, f"mx{i}.equal.test") for i in range(4)],
                "nullmx.test": [(0, ".")],
                "dangling.test": [(10, "nowhere.dangling.test")],
                "partial.test": [(10, "nowhere.partial.test"), (20, "mx.partial.test")],
            },
            hosts={
                "mx10.pref.test": ["127.0.0.10"],
                "mx20.pref.test": ["127.0.0.20", "::1"],
                "mx30.pref.test": ["127.0.0.30"],
                **{f"mx{i}.equal.test": [f"127.0.1.{i}"] for i in range(4)},
                "nullmx.test": ["127.0.0.99"],
                "amx.test": ["127.0.0.5"],
                "v6only.test": ["::1"],
                "mx.partial.test": ["127.0.0.7"],
                "dangling.test": ["127.0.0.8"],
            },
            zones=("test",),
            broken=("broken.test",),
        )
    except PeerUnavailable as exc:
        pytest.skip(f"dnsmasq unavailable: {exc}")
    with server:
        yield server


MX = Route("direct", kind="mx", port=2525)
interop = pytest.mark.interop


def targets_for(server: DnsmasqServer, domain: str) -> list[Target]:
    return asyncio.run(resolve_targets(MX, domain, server.resolver()))


def failure_for(server: DnsmasqServer, domain: str) -> RoutingError:
    with pytest.raises(RoutingError) as info:
        targets_for(server, domain)
    return info.value


@interop
def test_mx_sorted_by_preference_then_addresses(dns_server: DnsmasqServer) -> None:
    targets = targets_for(dns_server, "pref.test")
    assert [(t.host, t.port, t.name) for t in targets] == [
        ("127.0.0.10", 2525, "mx10.pref.test"),
        ("127.0.0.20", 2525, "mx20.pref.test"),
        ("::1", 2525, "mx20.pref.test"),
        ("127.0.0.30", 2525, "mx30.pref.test"),
    ]
    assert targets[0].server_name == "mx10.pref.test"


@interop
def test_equal_preference_is_randomised(dns_server: DnsmasqServer) -> None:
    orders = {tuple(t.host for t in targets_for(dns_server, "equal.test")) for _ in range(20)}
    assert all(sorted(o) == [f"127.0.1.{i}" for i in range(4)] for o in orders)
    assert len(orders) > 1  # 20 draws of 24 orders: all equal has probability 24**-19


@interop
def test_no_mx_falls_back_to_address_records(dns_server: DnsmasqServer) -> None:
    assert targets_for(dns_server, "amx.test") == [Target("127.0.0.5", 2525)]
    assert [t.name for t in targets_for(dns_server, "AMX.test")] == ["amx.test"]
    assert targets_for(dns_server, "v6only.test") == [Target("::1", 2525)]


@interop
def test_unresolvable_exchange_skipped(dns_server: DnsmasqServer) -> None:
    assert targets_for(dns_server, "partial.test") == [Target("127.0.0.7", 2525)]


@interop
def test_null_mx_is_permanent(dns_server: DnsmasqServer) -> None:
    err = failure_for(dns_server, "nullmx.test")
    assert err.permanent
    assert err.reply.startswith("556 5.1.10")


@interop
def test_nxdomain_is_permanent(dns_server: DnsmasqServer) -> None:
    err = failure_for(dns_server, "nonexistent.test")
    assert err.permanent
    assert "NXDOMAIN" in err.reply and err.reply.startswith("550 5.1.2")


@interop
def test_mx_without_address_is_permanent(dns_server: DnsmasqServer) -> None:
    # the domain's own A record must not be used when it has MX records
    err = failure_for(dns_server, "dangling.test")
    assert err.permanent
    assert err.reply.startswith("550 5.4.4") and "nowhere.dangling.test" in err.reply


@interop
def test_timeout_is_temporary(dns_server: DnsmasqServer) -> None:
    err = failure_for(dns_server, "x.broken.test")
    assert not err.permanent
    assert err.reply.startswith("451 4.4.3")
