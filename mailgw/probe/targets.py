"""Probe targets: what ``mailgw probe`` is asked to look at.

Theory of operation
-------------------
A target is ``host``, ``host:port``, ``host:port/proto`` or ``host/proto``
(IPv6 literals in brackets: ``[::1]:143/imap``).

* ``host`` alone expands to the seven standard ports of
  :data:`mailgw.probe.model.STANDARD_PORTS` (or to one when a protocol or port
  is given as a default).
* ``host:port`` guesses the protocol from the standard port; any other port
  needs ``/proto`` (a :class:`~mailgw.errors.UsageError` says so).
* ``host/proto`` uses the protocol's standard port.

A targets file holds one target per line; ``#`` starts a comment; blank lines
are skipped; an error names ``file:line`` (:class:`~mailgw.errors.ConfigError`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from mailgw.errors import ConfigError, UsageError
from mailgw.probe.model import IMPLICIT_TLS, STANDARD_PORTS

_PORT_TO_PROTO = {port: proto for proto, port in STANDARD_PORTS.items()}


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    proto: str  # a key of model.STANDARD_PORTS

    @property
    def implicit_tls(self) -> bool:
        return self.proto in IMPLICIT_TLS

    @property
    def family(self) -> str:
        """``smtp``, ``pop3`` or ``imap``: the protocol spoken (after TLS, if implicit)."""
        if self.proto in ("smtp", "submission", "smtps"):
            return "smtp"
        return self.proto.removesuffix("s")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}/{self.proto}"


def _check_proto(proto: str, text: str) -> str:
    proto = proto.strip().lower()
    if proto not in STANDARD_PORTS:
        raise UsageError(
            f"{text!r}: unknown protocol {proto!r} (one of {', '.join(STANDARD_PORTS)})"
        )
    return proto


def _check_port(value: str | int, text: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise UsageError(f"{text!r}: port {value!r} is not a number") from None
    if not 0 < port < 65536:
        raise UsageError(f"{text!r}: port {port} is out of range 1-65535")
    return port


def _check_host(host: str, text: str) -> str:
    if not host:
        raise UsageError(f"{text!r}: no host name")
    if any(c.isspace() or c in "/[]@" for c in host):
        raise UsageError(f"{text!r}: invalid host name {host!r}")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(f"{text!r}: invalid IPv6 address {host!r}") from None
    return host


def _split(text: str) -> tuple[str, str | None, str | None]:
    """(host, port text or None, proto or None)."""
    rest, slash, proto = text.partition("/")
    proto_part = proto if slash else None
    if slash and not proto:
        raise UsageError(f"{text!r}: empty protocol after '/'")
    if rest.startswith("["):
        host, bracket, after = rest[1:].partition("]")
        if not bracket:
            raise UsageError(f"{text!r}: missing ']' after the IPv6 address")
        if after and not after.startswith(":"):
            raise UsageError(f"{text!r}: expected ':port' after ']'")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(f"{text!r}: {host!r} in brackets is not an IPv6 address") from None
        return host, after[1:] if after else None, proto_part
    if rest.count(":") > 1:
        # a bare IPv6 address: no port possible without brackets
        return rest, None, proto_part
    host, colon, port = rest.partition(":")
    if colon and not port:
        raise UsageError(f"{text!r}: empty port after ':'")
    return host, port if colon else None, proto_part


def parse_target(
    text: str, *, default_proto: str | None = None, port: int | None = None
) -> list[Target]:
    """The targets ``text`` names (see the module docstring).

    ``default_proto``/``port`` (the CLI's ``--proto``/``--port``) apply where the
    text gives none; a bare host with neither expands to all standard ports.
    """
    text = text.strip()
    if not text:
        raise UsageError("empty target")
    host_text, port_text, proto_text = _split(text)
    host = _check_host(host_text, text)
    proto = _check_proto(proto_text, text) if proto_text is not None else None
    if proto is None and default_proto is not None:
        proto = _check_proto(default_proto, text)
    the_port = _check_port(port_text, text) if port_text is not None else None
    if the_port is None and port is not None:
        the_port = _check_port(port, text)
    if the_port is None and proto is None:
        return [Target(host, p, name) for name, p in STANDARD_PORTS.items()]
    if the_port is None:
        assert proto is not None
        return [Target(host, STANDARD_PORTS[proto], proto)]
    if proto is None:
        guessed = _PORT_TO_PROTO.get(the_port)
        if guessed is None:
            raise UsageError(
                f"{text!r}: port {the_port} is not a standard mail port; say which protocol "
                f"with '/proto' (e.g. {host_text}:{the_port}/imap) or --proto"
            )
        proto = guessed
    return [Target(host, the_port, proto)]


def read_targets_file(
    path: Path, *, default_proto: str | None = None, port: int | None = None
) -> list[Target]:
    """Targets from a file: one per line, ``#`` comments; ConfigError names file:line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read targets file: {exc}", file=str(path)) from exc
    targets: list[Target] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            targets.extend(parse_target(line, default_proto=default_proto, port=port))
        except UsageError as exc:
            raise ConfigError(exc.message, file=str(path), line=number) from exc
    return targets


__all__ = ["Target", "parse_target", "read_targets_file"]
