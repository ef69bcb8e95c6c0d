"""The ``relay:`` section: defaults, durations, routes, and errors with file:line:key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailgw.config.loader import load_config
from mailgw.config.schema import RelayConfig, RouteConfig
from mailgw.errors import ConfigError

HEAD = """\
data_dir: data
domains: [office.example]
listeners:
  - {protocol: smtp, address: 127.0.0.1, port: 2525}
"""

SMARTHOST = """\
relay:
  routes:
    - name: isp
      hosts: [smtp.isp.example, "smtp2.isp.example:2525"]
      username: office
      password_file: smarthost.pass
"""


def test_no_relay_section(write_config: Callable[[str], Path]) -> None:
    config = load_config(write_config(HEAD))
    assert config.relay is None
    assert config.queue_dir == config.data_dir / "queue"


def test_defaults(write_config: Callable[[str], Path], tmp_path: Path) -> None:
    config = load_config(write_config(HEAD + SMARTHOST))
    relay = config.relay
    assert relay is not None
    assert relay.lifetime == 5 * 86400
    assert relay.retry_min == 300
    assert relay.retry_max == 4 * 3600
    assert relay.delay_warning == 4 * 3600
    assert relay.spool_dir == tmp_path / "data" / "queue"
    assert config.queue_dir == relay.spool_dir
    assert relay.nameservers == () and relay.resolver_port == 53
    assert relay.postmaster is None
    (route,) = relay.routes
    assert route == RouteConfig(
        name="isp",
        kind="smarthost",
        hosts=("smtp.isp.example", "smtp2.isp.example:2525"),
        port=587,
        tls="starttls",
        tls_required=True,
        tls_verify=True,
        username="office",
        password_file=tmp_path / "smarthost.pass",
    )
    assert RelayConfig().lifetime == relay.lifetime


def test_everything(write_config: Callable[[str], Path], tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("ca")
    text = (
        HEAD
        + """\
relay:
  spool_dir: /var/spool/mailgw
  lifetime: 2d
  retry_min: 1m30s
  retry_max: 2h
  delay_warning: null
  postmaster: Postmaster@Office.Example
  notice_interval: 30m
  resolver: {nameservers: [127.0.0.1, "::1"], port: 5353}
  routes:
    - name: partner
      kind: smarthost
      hosts: ["[2001:db8::1]:465"]
      tls: implicit
      tls_verify: false
      ca_file: ca.pem
      username: u
      password_env: PARTNER_PASS
      domains: [partner.example, Other.Example]
      max_per_connection: 10
      concurrency: 2
    - name: direct
      kind: mx
"""
    )
    relay = load_config(write_config(text)).relay
    assert relay is not None
    assert relay.spool_dir == Path("/var/spool/mailgw")
    assert relay.lifetime == 2 * 86400
    assert relay.retry_min == 90
    assert relay.retry_max == 7200
    assert relay.delay_warning is None
    assert relay.postmaster == "Postmaster@office.example"
    assert relay.notice_interval == 1800
    assert relay.nameservers == ("127.0.0.1", "::1") and relay.resolver_port == 5353
    partner, direct = relay.routes
    assert partner.hosts == ("[2001:db8::1]:465",)
    assert partner.port == 465 and partner.tls == "implicit"
    assert partner.tls_required is True and partner.tls_verify is False
    assert partner.ca_file == tmp_path / "ca.pem"
    assert partner.password_env == "PARTNER_PASS" and partner.password_file is None
    assert partner.domains == ("partner.example", "other.example")
    assert (partner.max_per_connection, partner.concurrency) == (10, 2)
    # mx: port 25, opportunistic TLS by default
    assert (direct.kind, direct.port, direct.domains) == ("mx", 25, ())
    assert direct.tls_required is False and direct.tls_verify is False


def test_routes_work_with_the_router(write_config: Callable[[str], Path]) -> None:
    routing = pytest.importorskip("mailgw.relay.routing")
    text = HEAD + SMARTHOST + "    - {name: partner, kind: mx, domains: [partner.example]}\n"
    relay = load_config(write_config(text)).relay
    router = routing.Router(relay)
    assert router.route_for("partner.example").name == "partner"
    isp = router.route_for("anywhere.example")
    assert isp.name == "isp" and isp.port == 587 and isp.username == "office"


ERRORS: list[tuple[str, str, str, str]] = [
    # id, relay section, key, message fragment; the bad line carries "# <-"
    (
        "inline password",
        "relay:\n  routes:\n    - name: isp\n      hosts: [a.example]\n      username: u\n"
        "      password: secret  # <-\n",
        "relay.routes[0].password",
        "passwords are not accepted inline",
    ),
    (
        "typo in relay key",
        "relay:\n  routes: [{name: x, kind: mx}]\n  liftime: 3d  # <-\n",
        "relay.liftime",
        "did you mean 'lifetime'?",
    ),
    (
        "typo in route key",
        "relay:\n  routes:\n    - name: x\n      kind: mx\n      concurrancy: 3  # <-\n",
        "relay.routes[0].concurrancy",
        "did you mean 'concurrency'?",
    ),
    (
        "bad duration",
        "relay:\n  routes: [{name: x, kind: mx}]\n  retry_min: soon  # <-\n",
        "relay.retry_min",
        "not a duration",
    ),
    (
        "retry_max below retry_min",
        "relay:\n  routes: [{name: x, kind: mx}]\n  retry_min: 1h\n  retry_max: 10m  # <-\n",
        "relay.retry_max",
        "at least retry_min",
    ),
    (
        "delay warning after lifetime",
        "relay:\n  routes: [{name: x, kind: mx}]\n  lifetime: 1h\n  delay_warning: 2h  # <-\n",
        "relay.delay_warning",
        "shorter than lifetime",
    ),
    (
        "smarthost without hosts",
        "relay:\n  routes:\n    - name: isp  # <-\n",
        "relay.routes[0]",
        "needs hosts",
    ),
    (
        "mx with hosts",
        "relay:\n  routes:\n    - name: x\n      kind: mx\n      hosts: [a.example]  # <-\n",
        "relay.routes[0].hosts",
        "finds its hosts in DNS",
    ),
    (
        "bad kind",
        "relay:\n  routes:\n    - name: x\n      kind: direct  # <-\n",
        "relay.routes[0].kind",
        "expected one of: smarthost, mx",
    ),
    (
        "both password sources",
        "relay:\n  routes:\n    - name: x\n      hosts: [a.example]\n      username: u\n"
        "      password_file: p\n      password_env: P  # <-\n",
        "relay.routes[0].password_env",
        "not both",
    ),
    (
        "username without password",
        "relay:\n  routes:\n    - name: x\n      hosts: [a.example]\n      username: u  # <-\n",
        "relay.routes[0].username",
        "needs a password",
    ),
    (
        "tls none while required",
        "relay:\n  routes:\n    - name: x\n      hosts: [a.example]\n      tls: none  # <-\n",
        "relay.routes[0].tls",
        "tls_required: false",
    ),
    (
        "bad host",
        "relay:\n  routes:\n    - name: x\n      hosts: [bad_host!]  # <-\n",
        "relay.routes[0].hosts[0]",
        "not a host name",
    ),
    (
        "bad host port",
        "relay:\n  routes:\n    - name: x\n      hosts: [a.example:99999]  # <-\n",
        "relay.routes[0].hosts[0]",
        "bad port",
    ),
    (
        "no default route",
        "relay:\n  routes:  # <-\n    - {name: x, kind: mx, domains: [a.example]}\n",
        "relay.routes",
        "no default route",
    ),
    (
        "two default routes",
        "relay:\n  routes:\n    - {name: x, kind: mx}\n    - {name: y, kind: mx}  # <-\n",
        "relay.routes[1]",
        "second default route",
    ),
    (
        "domain routed twice",
        "relay:\n  routes:\n    - {name: x, kind: mx}\n    - {name: y, kind: mx, domains: [a.ex]}\n"
        "    - name: z\n      kind: mx\n      domains: [A.ex]  # <-\n",
        "relay.routes[2].domains",
        "already routed by relay.routes[1]",
    ),
    (
        "local domain routed out",
        "relay:\n  routes:\n    - {name: x, kind: mx}\n    - name: y\n      kind: mx\n"
        "      domains:\n        - office.example  # <-\n",
        "relay.routes[1].domains[0]",
        "is a local domain",
    ),
    (
        "duplicate route name",
        "relay:\n  routes:\n    - {name: x, kind: mx}\n    - name: x  # <-\n"
        "      kind: mx\n      domains: [a.ex]\n",
        "relay.routes[1].name",
        "duplicate route name",
    ),
    (
        "bad nameserver",
        "relay:\n  routes: [{name: x, kind: mx}]\n  resolver:\n    nameservers:\n"
        "      - dns.example  # <-\n",
        "relay.resolver.nameservers[0]",
        "not an IP address",
    ),
    (
        "bad postmaster",
        "relay:\n  routes: [{name: x, kind: mx}]\n  postmaster: nobody  # <-\n",
        "relay.postmaster",
        "not a mail address",
    ),
    (
        "bad env name",
        "relay:\n  routes:\n    - name: x\n      hosts: [a.ex]\n      username: u\n"
        "      password_env: 1-bad  # <-\n",
        "relay.routes[0].password_env",
        "not an environment variable name",
    ),
    (
        "missing ca file",
        "relay:\n  routes:\n    - name: x\n      hosts: [a.ex]\n      ca_file: nope.pem  # <-\n",
        "relay.routes[0].ca_file",
        "file not found",
    ),
    (
        "concurrency zero",
        "relay:\n  routes:\n    - name: x\n      kind: mx\n      concurrency: 0  # <-\n",
        "relay.routes[0].concurrency",
        "between 1 and 100",
    ),
]


@pytest.mark.parametrize(
    ("yaml", "key", "fragment"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_errors_name_file_line_key(
    write_config: Callable[[str], Path], yaml: str, key: str, fragment: str
) -> None:
    text = HEAD + yaml
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "# <-" in t)
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert error.key == key, str(error)
    assert fragment in error.detail, str(error)
    assert error.file == str(path)
    assert error.line == line, str(error)
    assert str(error).startswith(f"{path}:{line}: {key}: ")


def test_inline_password_is_not_echoed(write_config: Callable[[str], Path]) -> None:
    text = HEAD + (
        "relay:\n  routes:\n    - name: isp\n      hosts: [a.example]\n"
        "      username: u\n      password: hunter2-secret\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write_config(text))
    assert "hunter2-secret" not in str(info.value)
    assert "password_file" in str(info.value) and "password_env" in str(info.value)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_relay_example_is_valid() -> None:
    config = load_config(EXAMPLES / "relay.yaml")
    relay = config.relay
    assert relay is not None
    assert [r.name for r in relay.routes] == ["partner", "isp"]
    assert relay.routes[1].hosts == ("smtp.isp.example", "smtp2.isp.example:2525")
    assert relay.routes[1].password_env == "MAILGW_ISP_PASSWORD"
    text = (EXAMPLES / "relay.yaml").read_text(encoding="utf-8")
    assert "queue run" in text and "*/5 * * * *" in text  # the cron line


def test_office_example_relays_through_a_smarthost(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    for name in ("cert.pem", "key.pem"):
        (tmp_path / "etc" / name).write_text("pem")
    text = (EXAMPLES / "office.yaml").read_text(encoding="utf-8")
    text = text.replace("/etc/mailgw/", f"{tmp_path}/etc/").replace(
        "/var/lib/mailgw", f"{tmp_path}/var"
    )
    (tmp_path / "office.yaml").write_text(text, encoding="utf-8")
    config = load_config(tmp_path / "office.yaml")
    relay = config.relay
    assert relay is not None
    (isp,) = relay.routes
    assert (isp.kind, isp.domains, isp.tls, isp.tls_required, isp.tls_verify) == (
        "smarthost",
        (),
        "starttls",
        True,
        True,
    )
    assert isp.password_file == tmp_path / "etc" / "smarthost.pass"
    assert relay.postmaster == "postmaster@office.example"
    assert config.queue_dir == tmp_path / "var" / "queue"
