"""Load and validate a configuration file into a ``Config``.

``load_config(None)`` returns the embedded defaults (``defaults.py``).
``load_config(path)`` parses YAML with line numbers (``yamlsource.py``) and
validates strictly: every problem is a ``ConfigError`` naming the file, the
line and the dotted key (``listeners[2].tls``); unknown keys get a "did you
mean" from the valid keys at that level.  Relative paths resolve against the
directory of the configuration file.  The layout is documented in
``mailgw/config/example.yaml`` (``mailgw config example``).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NoReturn, get_args, get_type_hints

from mailgw.config.defaults import default_data_dir, default_hostname, embedded_config
from mailgw.config.schema import (
    Config,
    IPNetwork,
    LimitsConfig,
    ListenerConfig,
    Protocol,
    RelayConfig,
    RouteConfig,
    RouteKind,
    TlsConfig,
    TlsMode,
)
from mailgw.config.yamlsource import LineDict, LineList, parse_yaml
from mailgw.errors import ConfigError

TOP_KEYS = (
    "data_dir",
    "hostname",
    "domains",
    "aliases",
    "catch_all",
    "relay_networks",
    "users_file",
    "log_level",
    "tls",
    "limits",
    "listeners",
    "relay",
)
LISTENER_KEYS = ("name", "protocol", "address", "port", "tls", "trusted")
TLS_KEYS = ("cert", "key")
LIMIT_KEYS = tuple(f.name for f in fields(LimitsConfig))
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
TLS_MODES: tuple[str, ...] = get_args(TlsMode)
LOG_LEVELS = ("debug", "info", "warning", "error")
# Limits with a floor above 1 (RFC 5321 4.5.3.1.4: command lines of 512 octets).
LIMIT_MINIMUM = {"smtp_line_length": 512, "pop3_line_length": 512}

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_USER = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")  # docs/contracts.md
_LOCAL_PART = re.compile(r"^[^\s@\"<>(),;:\\\[\]]{1,64}$")
_LISTENER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

RELAY_KEYS = (
    "routes",
    "lifetime",
    "retry_min",
    "retry_max",
    "delay_warning",
    "spool_dir",
    "resolver",
    "postmaster",
    "notice_interval",
)
RESOLVER_KEYS = ("nameservers", "port")
ROUTE_KEYS = tuple(f.name for f in fields(RouteConfig))
ROUTE_KINDS: tuple[str, ...] = get_args(RouteKind)
INLINE_PASSWORD = (
    "passwords are not accepted inline: the configuration file is often readable by "
    "other users and ends up in backups and version control; put the password in a "
    "file only mailgw can read and name it with password_file:, or in an environment "
    "variable named with password_env:"
)


def load_config(path: Path | None) -> Config:
    """The configuration from ``path``, or the embedded defaults for ``None``."""
    if path is None:
        return embedded_config()
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", file=file) from None
    document = parse_yaml(data, file)
    base = Path(os.path.abspath(path)).parent
    return _Checker(file, base).config(document)


def is_hostname(name: str) -> bool:
    """A DNS host name: dot-separated LDH labels, at most 253 characters."""
    if not name or len(name) > 253 or name.endswith("."):
        return False
    return all(_LABEL.match(label) for label in name.lower().split("."))


def a_label(name: str) -> str:
    """Lower case, non-ASCII names in IDNA A-label form ("" if impossible)."""
    name = name.strip()
    if name.isascii():
        return name.lower()
    try:
        return name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return ""


def _kind(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


@dataclass
class _Checker:
    """Validation state: the file for messages and the base for paths."""

    file: str
    base: Path

    def fail(self, message: str, line: int | None, key: str | None) -> NoReturn:
        raise ConfigError(message, file=self.file, line=line, key=key or None)

    # --- shapes ------------------------------------------------------------

    def mapping(
        self,
        value: Any,
        line: int,
        path: str,
        valid: tuple[str, ...] | None = None,
        required: tuple[str, ...] = (),
    ) -> LineDict:
        if not isinstance(value, LineDict):
            self.fail(f"expected a mapping, got {_kind(value)}", line, path)
        for key, key_line in value.duplicates:
            self.fail("duplicate key", key_line, _join(path, key))
        for key in value:
            key_line = value.key_lines[key]
            if not isinstance(key, str):
                self.fail(f"keys must be strings, got {_kind(key)}", key_line, path)
            if valid is not None and key not in valid:
                message = f"unknown key '{key}'"
                close = difflib.get_close_matches(key, valid, n=1)
                if close:
                    message += f"; did you mean '{close[0]}'?"
                else:
                    message += f" (valid keys: {', '.join(valid)})"
                self.fail(message, key_line, _join(path, key))
        for key in required:
            if key not in value:
                self.fail("required key is missing", line, _join(path, key))
        return value

    def items(self, value: Any, line: int, path: str, *, non_empty: bool = True) -> LineList:
        if not isinstance(value, LineList):
            self.fail(f"expected a list, got {_kind(value)}", line, path)
        if non_empty and not value:
            self.fail("the list is empty", line, path)
        return value

    def string(self, value: Any, line: int, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(f"expected a non-empty string, got {_kind(value)}", line, path)
        return value.strip()

    def integer(self, value: Any, line: int, path: str, low: int, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"expected an integer, got {_kind(value)}", line, path)
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.fail(f"must be {bounds}, got {value}", line, path)
        return value

    def number(self, value: Any, line: int, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(f"expected a number, got {_kind(value)}", line, path)
        if value < 0:
            self.fail(f"must not be negative, got {value}", line, path)
        return float(value)

    def boolean(self, value: Any, line: int, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(f"expected true or false, got {_kind(value)}", line, path)
        return value

    def choice(self, value: Any, line: int, path: str, valid: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in valid:
            hint = ""
            if isinstance(value, bool):
                hint = " (YAML reads yes/no/on/off as booleans: quote the value)"
            self.fail(f"got {_kind(value)}, expected one of: {', '.join(valid)}{hint}", line, path)
        return value

    def path(self, value: Any, line: int, path: str) -> Path:
        raw = Path(self.string(value, line, path)).expanduser()
        return Path(os.path.normpath(self.base / raw))

    # --- sections ----------------------------------------------------------

    def config(self, document: Any) -> Config:
        if document is None:
            self.fail("the file is empty: expected a mapping with domains and listeners", 1, None)
        top = self.mapping(document, 1, "", TOP_KEYS, required=("domains", "listeners"))
        line = top.value_lines.get  # scalars: the value's line
        kline = top.key_lines.get  # sections: the line of their key

        domains = self.domains(top["domains"], kline("domains", 1))
        hostname = default_hostname()
        if "hostname" in top:
            hostname = self.hostname(top["hostname"], line("hostname", 1), "hostname")
        data_dir = default_data_dir()
        if "data_dir" in top:
            data_dir = self.path(top["data_dir"], line("data_dir", 1), "data_dir")
        users_file = None
        if "users_file" in top:
            users_file = self.path(top["users_file"], line("users_file", 1), "users_file")
        log_level = "info"
        if "log_level" in top:
            raw = top["log_level"]
            level = raw.lower() if isinstance(raw, str) else raw
            log_level = self.choice(level, line("log_level", 1), "log_level", LOG_LEVELS)
        tls = self.tls(top["tls"], kline("tls", 1)) if "tls" in top else None
        limits = self.limits(top["limits"], kline("limits", 1)) if "limits" in top else None
        listeners = self.listeners(top["listeners"], kline("listeners", 1), tls)
        networks: tuple[IPNetwork, ...] = ()
        if "relay_networks" in top:
            networks = self.networks(top["relay_networks"], kline("relay_networks", 1))
        aliases: dict[str, tuple[str, ...]] = {}
        if "aliases" in top:
            aliases = self.aliases(top["aliases"], kline("aliases", 1), domains)
        catch_all: dict[str, str] = {}
        if "catch_all" in top:
            catch_all = self.catch_all(top["catch_all"], kline("catch_all", 1), domains)
        relay = None
        if "relay" in top:
            relay = self.relay(top["relay"], kline("relay", 1), domains, data_dir)
        return Config(
            data_dir=data_dir,
            hostname=hostname,
            domains=domains,
            listeners=listeners,
            tls=tls,
            aliases=aliases,
            catch_all=catch_all,
            relay_networks=networks,
            limits=limits if limits is not None else LimitsConfig(),
            users_file=users_file,
            log_level=log_level,
            relay=relay,
            source=self.file,
        )

    def hostname(self, value: Any, line: int, path: str) -> str:
        text = self.string(value, line, path)
        name = a_label(text)
        if not is_hostname(name):
            self.fail(f"not a valid host name: {text!r}", line, path)
        return name

    def domains(self, value: Any, line: int) -> tuple[str, ...]:
        items = self.items(value, line, "domains")
        seen: list[str] = []
        for i, (item, item_line) in enumerate(zip(items, items.item_lines, strict=True)):
            domain = self.hostname(item, item_line, f"domains[{i}]")
            if domain in seen:
                self.fail(f"duplicate domain {domain!r}", item_line, f"domains[{i}]")
            seen.append(domain)
        return tuple(seen)

    def tls(self, value: Any, line: int) -> TlsConfig:
        section = self.mapping(value, line, "tls", TLS_KEYS, required=TLS_KEYS)
        paths: dict[str, Path] = {}
        for key in TLS_KEYS:
            key_line = section.value_lines[key]
            path = self.path(section[key], key_line, f"tls.{key}")
            if not path.exists():
                self.fail(f"file not found: {path}", key_line, f"tls.{key}")
            if not path.is_file():
                self.fail(f"not a regular file: {path}", key_line, f"tls.{key}")
            paths[key] = path
        return TlsConfig(cert=paths["cert"], key=paths["key"])

    def limits(self, value: Any, line: int) -> LimitsConfig:
        section = self.mapping(value, line, "limits", LIMIT_KEYS)
        types = get_type_hints(LimitsConfig)
        values: dict[str, Any] = {}
        for key, raw in section.items():
            key_line, path = section.value_lines[key], f"limits.{key}"
            if types[key] is float:
                values[key] = self.number(raw, key_line, path)
            else:
                values[key] = self.integer(raw, key_line, path, LIMIT_MINIMUM.get(key, 1))
        limits = LimitsConfig(**values)
        if limits.auth_failure_max_delay < limits.auth_failure_delay:
            key = "auth_failure_max_delay"
            self.fail(
                f"must be at least auth_failure_delay ({limits.auth_failure_delay})",
                section.value_lines.get(key, section.line),
                f"limits.{key}",
            )
        return limits

    def listeners(self, value: Any, line: int, tls: TlsConfig | None) -> tuple[ListenerConfig, ...]:
        items = self.items(value, line, "listeners")
        result: list[ListenerConfig] = []
        names: dict[str, str] = {}
        sockets: dict[tuple[Any, int], str] = {}
        for i, (item, item_line) in enumerate(zip(items, items.item_lines, strict=True)):
            path = f"listeners[{i}]"
            entry = self.mapping(
                item, item_line, path, LISTENER_KEYS, required=("protocol", "address", "port")
            )
            at = entry.value_lines.get
            protocol = self.choice(
                entry["protocol"], at("protocol", 1), f"{path}.protocol", PROTOCOLS
            )
            address_line = at("address", 1)
            raw_address = entry["address"]
            try:
                if not isinstance(raw_address, str):
                    raise ValueError(raw_address)
                address = ipaddress.ip_address(raw_address.strip())
            except ValueError:
                self.fail(
                    f"not an IP address: {_kind(raw_address)} (host names are not accepted here)",
                    address_line,
                    f"{path}.address",
                )
            port = self.integer(entry["port"], at("port", 1), f"{path}.port", 0, 65535)
            mode = "none"
            if "tls" in entry:
                mode = self.choice(entry["tls"], at("tls", 1), f"{path}.tls", TLS_MODES)
            trusted = False
            if "trusted" in entry:
                trusted = self.boolean(entry["trusted"], at("trusted", 1), f"{path}.trusted")
            name = f"{protocol}-{port}"
            if "name" in entry:
                name = self.string(entry["name"], at("name", 1), f"{path}.name")
                if not _LISTENER_NAME.match(name):
                    self.fail(
                        f"listener names are letters, digits, '.', '_' and '-': {name!r}",
                        at("name", 1),
                        f"{path}.name",
                    )
            if name in names:
                self.fail(
                    f"duplicate listener name {name!r} (also {names[name]})",
                    at("name", item_line),
                    f"{path}.name",
                )
            names[name] = path
            if port != 0:
                self.check_socket(sockets, address, port, at("port", 1), path)
            if mode != "none" and tls is None:
                self.fail(
                    f"TLS mode '{mode}' needs a top-level 'tls:' section with cert and key",
                    at("tls", item_line),
                    f"{path}.tls",
                )
            result.append(
                ListenerConfig(
                    name=name,
                    protocol=protocol,  # type: ignore[arg-type]  # checked against PROTOCOLS
                    address=str(address),
                    port=port,
                    tls=mode,  # type: ignore[arg-type]  # checked against TLS_MODES
                    trusted=trusted,
                )
            )
        return tuple(result)

    def check_socket(
        self,
        sockets: dict[tuple[Any, int], str],
        address: ipaddress.IPv4Address | ipaddress.IPv6Address,
        port: int,
        line: int,
        path: str,
    ) -> None:
        """Reject a second listener on the same address:port, or one that a
        wildcard listener of the same family already covers."""
        shown = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
        for (other, other_port), other_path in sockets.items():
            if other_port != port or other.version != address.version:
                continue
            if other == address:
                self.fail(f"{shown} is already used by {other_path}", line, f"{path}.port")
            if other.is_unspecified or address.is_unspecified:
                self.fail(
                    f"{shown} overlaps the wildcard listener {other_path}", line, f"{path}.port"
                )
        sockets[(address, port)] = path

    def networks(self, value: Any, line: int) -> tuple[IPNetwork, ...]:
        items = self.items(value, line, "relay_networks", non_empty=False)
        result: list[IPNetwork] = []
        for i, (item, item_line) in enumerate(zip(items, items.item_lines, strict=True)):
            path = f"relay_networks[{i}]"
            text = self.string(item, item_line, path)
            try:
                result.append(ipaddress.ip_network(text, strict=True))
            except ValueError as exc:
                self.fail(
                    f"not a network in CIDR notation (like 192.168.1.0/24): {exc}", item_line, path
                )
        return tuple(result)

    def local_domain(self, domain: str, domains: tuple[str, ...], line: int, path: str) -> None:
        if domain not in domains:
            self.fail(f"domain {domain!r} is not in domains ({', '.join(domains)})", line, path)

    def address(self, text: str, domains: tuple[str, ...], line: int, path: str) -> str:
        """A local address ``local@domain`` (domain lower-cased, must be local)."""
        local, _, domain = text.rpartition("@")
        domain = a_label(domain)
        if not _LOCAL_PART.match(local) or not is_hostname(domain):
            self.fail(f"not a mail address: {text!r}", line, path)
        self.local_domain(domain, domains, line, path)
        return f"{local}@{domain}"

    def target(self, value: Any, domains: tuple[str, ...], line: int, path: str) -> str:
        """An alias or catch-all target: a local user name or a local address."""
        text = self.string(value, line, path)
        if "@" in text:
            return self.address(text, domains, line, path)
        if not _USER.match(text.lower()):
            self.fail(f"not a user name or local address: {text!r}", line, path)
        return text.lower()

    def aliases(
        self, value: Any, line: int, domains: tuple[str, ...]
    ) -> dict[str, tuple[str, ...]]:
        section = self.mapping(value, line, "aliases")
        result: dict[str, tuple[str, ...]] = {}
        for key, raw in section.items():
            path, key_line = f"aliases.{key}", section.key_lines[key]
            address = self.address(key.strip(), domains, key_line, path).lower()
            if address in result:
                self.fail("duplicate alias (addresses are compared in lower case)", key_line, path)
            value_line = section.value_lines[key]
            if isinstance(raw, LineList):
                items = self.items(raw, value_line, path)
                targets = tuple(
                    self.target(item, domains, item_line, f"{path}[{i}]")
                    for i, (item, item_line) in enumerate(zip(items, items.item_lines, strict=True))
                )
            else:
                targets = (self.target(raw, domains, value_line, path),)
            result[address] = targets
        return result

    def catch_all(self, value: Any, line: int, domains: tuple[str, ...]) -> dict[str, str]:
        section = self.mapping(value, line, "catch_all")
        result: dict[str, str] = {}
        for key, raw in section.items():
            path, key_line = f"catch_all.{key}", section.key_lines[key]
            domain = a_label(key.lstrip().lstrip("@"))
            if not is_hostname(domain):
                self.fail(f"not a valid domain: {key!r}", key_line, path)
            self.local_domain(domain, domains, key_line, path)
            result[domain] = self.target(raw, domains, section.value_lines[key], path)
        return result

    # --- relay ---------------------------------------------------------------

    def duration(self, value: Any, line: int, path: str) -> float:
        """Seconds: a number, or a string like ``300``, ``5m``, ``4h``, ``1h30m``, ``5d``."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and value.strip():
            text = value.strip().lower()
            pos, seconds = 0, 0.0
            while pos < len(text):
                match = _DURATION.match(text, pos)
                if match is None:
                    self.fail(
                        f"not a duration: {value!r} (seconds, or a number with s, m, h, d "
                        "or w: 300, 5m, 4h, 1h30m, 5d)",
                        line,
                        path,
                    )
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
                while pos < len(text) and text[pos] == " ":
                    pos += 1
        else:
            self.fail(f"expected a duration (like 300, 5m, 4h, 5d), got {_kind(value)}", line, path)
        if seconds <= 0:
            self.fail(f"must be more than 0 seconds, got {value!r}", line, path)
        return seconds

    def mail_address(self, value: Any, line: int, path: str) -> str:
        """Any ``local@domain`` address (the domain need not be local)."""
        text = self.string(value, line, path)
        local, _, domain = text.rpartition("@")
        domain = a_label(domain)
        if not _LOCAL_PART.match(local) or not is_hostname(domain):
            self.fail(f"not a mail address: {text!r}", line, path)
        return f"{local}@{domain}"

    def relay(self, value: Any, line: int, domains: tuple[str, ...], data_dir: Path) -> RelayConfig:
        section = self.mapping(value, line, "relay", RELAY_KEYS, required=("routes",))
        at = section.value_lines.get
        values: dict[str, Any] = {}
        for key in ("lifetime", "retry_min", "retry_max", "notice_interval"):
            if key in section:
                values[key] = self.duration(section[key], at(key, line), f"relay.{key}")
        if "delay_warning" in section:
            raw = section["delay_warning"]
            values["delay_warning"] = (
                None
                if raw is None or raw is False
                else self.duration(raw, at("delay_warning", line), "relay.delay_warning")
            )
        relay = RelayConfig(**values)
        if relay.retry_max < relay.retry_min:
            self.fail(
                f"must be at least retry_min ({relay.retry_min:g} s)",
                at("retry_max", at("retry_min", line)),
                "relay.retry_max",
            )
        if relay.delay_warning is not None and relay.delay_warning >= relay.lifetime:
            self.fail(
                f"must be shorter than lifetime ({relay.lifetime:g} s), or null to disable",
                at("delay_warning", line),
                "relay.delay_warning",
            )
        spool_dir = data_dir / "queue"
        if "spool_dir" in section:
            spool_dir = self.path(section["spool_dir"], at("spool_dir", line), "relay.spool_dir")
        nameservers: tuple[str, ...] = ()
        resolver_port = 53
        if "resolver" in section:
            nameservers, resolver_port = self.resolver(
                section["resolver"], section.key_lines["resolver"]
            )
        postmaster = None
        if section.get("postmaster") is not None:
            postmaster = self.mail_address(
                section["postmaster"], at("postmaster", line), "relay.postmaster"
            )
        routes = self.routes(section["routes"], section.key_lines["routes"], domains)
        return RelayConfig(
            routes=routes,
            lifetime=relay.lifetime,
            retry_min=relay.retry_min,
            retry_max=relay.retry_max,
            delay_warning=relay.delay_warning,
            spool_dir=spool_dir,
            nameservers=nameservers,
            resolver_port=resolver_port,
            postmaster=postmaster,
            notice_interval=relay.notice_interval,
        )

    def resolver(self, value: Any, line: int) -> tuple[tuple[str, ...], int]:
        section = self.mapping(value, line, "relay.resolver", RESOLVER_KEYS)
        at = section.value_lines.get
        servers: list[str] = []
        if "nameservers" in section:
            items = self.items(section["nameservers"], line, "relay.resolver.nameservers")
            for i, (item, item_line) in enumerate(zip(items, items.item_lines, strict=True)):
                path = f"relay.resolver.nameservers[{i}]"
                text = self.string(item, item_line, path)
                try:
                    servers.append(str(ipaddress.ip_address(text)))
                except ValueError:
                    self.fail(f"not an IP address: {text!r}", item_line, path)
        port = 53
        if "port" in section:
            port = self.integer(section["port"], at("port", line), "relay.resolver.port", 1, 65535)
        return tuple(servers), port

    def routes(self, value: Any, line: int, domains: tuple[str, ...]) -> tuple[RouteConfig, ...]:
        items = self.items(value, line, "relay.routes")
        result: list[RouteConfig] = []
        names: dict[str, str] = {}
        routed: dict[str, str] = {}
        default: str | None = None
        for i, (item, item_line) in enumerate(zip(items, items.item_lines, strict=True)):
            path = f"relay.routes[{i}]"
            if isinstance(item, LineDict) and "password" in item:
                self.fail(INLINE_PASSWORD, item.key_lines["password"], f"{path}.password")
            route = self.route(item, item_line, path, domains)
            entry: LineDict = item
            if route.name in names:
                self.fail(
                    f"duplicate route name {route.name!r} (also {names[route.name]})",
                    entry.value_lines.get("name", item_line),
                    f"{path}.name",
                )
            names[route.name] = path
            if not route.domains:
                if default is not None:
                    self.fail(
                        f"a second default route (no domains:); {default} is already the "
                        "default: give one of them a domains: list",
                        item_line,
                        path,
                    )
                default = path
            for domain in route.domains:
                if domain in routed:
                    self.fail(
                        f"domain {domain!r} is already routed by {routed[domain]}",
                        entry.key_lines.get("domains", item_line),
                        f"{path}.domains",
                    )
                routed[domain] = path
            result.append(route)
        if default is None:
            self.fail(
                "no default route: one route needs no domains: list, so that mail for "
                "every other domain has a way out",
                line,
                "relay.routes",
            )
        return tuple(result)

    def route(self, value: Any, line: int, path: str, domains: tuple[str, ...]) -> RouteConfig:
        entry = self.mapping(value, line, path, ROUTE_KEYS, required=("name",))
        at = entry.value_lines.get
        name = self.string(entry["name"], at("name", line), f"{path}.name")
        if not _LISTENER_NAME.match(name):
            self.fail(
                f"route names are letters, digits, '.', '_' and '-': {name!r}",
                at("name", line),
                f"{path}.name",
            )
        kind = "smarthost"
        if "kind" in entry:
            kind = self.choice(entry["kind"], at("kind", line), f"{path}.kind", ROUTE_KINDS)
        hosts: list[str] = []
        if "hosts" in entry:
            raw = entry["hosts"]
            hosts_line = at("hosts", line)
            if isinstance(raw, LineList):
                items = self.items(raw, hosts_line, f"{path}.hosts")
                pairs = list(zip(items, items.item_lines, strict=True))
            else:
                pairs = [(raw, hosts_line)]
            for j, (host, host_line) in enumerate(pairs):
                hpath = f"{path}.hosts[{j}]" if isinstance(raw, LineList) else f"{path}.hosts"
                hosts.append(self.relay_host(host, host_line, hpath))
        if kind == "smarthost" and not hosts:
            self.fail("a smarthost route needs hosts: (one or more, tried in order)", line, path)
        if kind == "mx" and hosts:
            self.fail(
                "an mx route finds its hosts in DNS (MX, then A/AAAA): remove hosts:, or "
                "use kind: smarthost",
                at("hosts", line),
                f"{path}.hosts",
            )
        tls = "starttls"
        if "tls" in entry:
            tls = self.choice(entry["tls"], at("tls", line), f"{path}.tls", TLS_MODES)
        # Smarthosts: TLS required and verified unless opted out.  MX: opportunistic
        # STARTTLS (RFC 7435) unless opted in, as most MX hosts have no valid certificate.
        strict = kind == "smarthost"
        flags = {"tls_required": strict, "tls_verify": strict}
        for key in flags:
            if key in entry:
                flags[key] = self.boolean(entry[key], at(key, line), f"{path}.{key}")
        if tls == "none" and flags["tls_required"]:
            self.fail(
                "tls: none cannot satisfy tls_required; say tls_required: false to send in "
                "plaintext on purpose",
                at("tls", line),
                f"{path}.tls",
            )
        default_port = 25 if kind == "mx" or tls == "none" else 465 if tls == "implicit" else 587
        port = default_port
        if "port" in entry:
            port = self.integer(entry["port"], at("port", line), f"{path}.port", 1, 65535)
        ca_file = None
        if entry.get("ca_file") is not None:
            ca_file = self.path(entry["ca_file"], at("ca_file", line), f"{path}.ca_file")
            if not ca_file.is_file():
                self.fail(f"file not found: {ca_file}", at("ca_file", line), f"{path}.ca_file")
        username = None
        if entry.get("username") is not None:
            username = self.string(entry["username"], at("username", line), f"{path}.username")
        password_file = None
        if entry.get("password_file") is not None:
            password_file = self.path(
                entry["password_file"], at("password_file", line), f"{path}.password_file"
            )
        password_env = None
        if entry.get("password_env") is not None:
            password_env = self.string(
                entry["password_env"], at("password_env", line), f"{path}.password_env"
            )
            if not _ENV_NAME.match(password_env):
                self.fail(
                    f"not an environment variable name: {password_env!r}",
                    at("password_env", line),
                    f"{path}.password_env",
                )
        if password_file is not None and password_env is not None:
            self.fail(
                "give password_file or password_env, not both",
                at("password_env", line),
                f"{path}.password_env",
            )
        has_password = password_file is not None or password_env is not None
        if username is not None and not has_password:
            self.fail(
                "username needs a password: add password_file: or password_env:",
                at("username", line),
                f"{path}.username",
            )
        if username is None and has_password:
            key = "password_file" if password_file is not None else "password_env"
            self.fail("a password without username:", at(key, line), f"{path}.{key}")
        if username is not None and kind == "mx":
            self.fail(
                "MX hosts do not take AUTH: remove username, or use kind: smarthost",
                at("username", line),
                f"{path}.username",
            )
        route_domains: list[str] = []
        if "domains" in entry:
            items = self.items(entry["domains"], at("domains", line), f"{path}.domains")
            for j, (item, item_line) in enumerate(zip(items, items.item_lines, strict=True)):
                dpath = f"{path}.domains[{j}]"
                domain = self.hostname(item, item_line, dpath)
                if domain in domains:
                    self.fail(
                        f"{domain!r} is a local domain (domains:); its mail is not relayed",
                        item_line,
                        dpath,
                    )
                if domain not in route_domains:
                    route_domains.append(domain)
        max_per = 100
        if "max_per_connection" in entry:
            max_per = self.integer(
                entry["max_per_connection"],
                at("max_per_connection", line),
                f"{path}.max_per_connection",
                1,
                10000,
            )
        concurrency = 4
        if "concurrency" in entry:
            concurrency = self.integer(
                entry["concurrency"], at("concurrency", line), f"{path}.concurrency", 1, 100
            )
        return RouteConfig(
            name=name,
            kind=kind,  # type: ignore[arg-type]  # checked against ROUTE_KINDS
            hosts=tuple(hosts),
            port=port,
            tls=tls,  # type: ignore[arg-type]  # checked against TLS_MODES
            tls_required=flags["tls_required"],
            tls_verify=flags["tls_verify"],
            ca_file=ca_file,
            username=username,
            password_file=password_file,
            password_env=password_env,
            domains=tuple(route_domains),
            max_per_connection=max_per,
            concurrency=concurrency,
        )

    def relay_host(self, value: Any, line: int, path: str) -> str:
        """A smarthost: a host name or an IP address, optionally with ``:port``
        (``smtp.isp.example:2525``, ``[2001:db8::1]:587``) overriding port:."""
        text = self.string(value, line, path)
        host, port = text, ""
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            if rest and not rest.startswith(":"):
                self.fail(f"not a host name or [address]:port: {text!r}", line, path)
            port = rest[1:]
        elif text.count(":") == 1:
            host, _, port = text.partition(":")
        if port and (not port.isdigit() or not 0 < int(port) < 65536):
            self.fail(f"bad port in {text!r}: expected 1-65535", line, path)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            name = a_label(host)
            if not is_hostname(name):
                self.fail(f"not a host name or IP address: {text!r}", line, path)
            return f"{name}:{port}" if port else name
        if port:
            return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
        return str(address)
