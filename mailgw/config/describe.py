"""A human summary of a ``Config``: what listens where, and under which rules.

Printed by ``mailgw config check`` and by ``mailgw serve`` at start.  Pure
text from the dataclasses: no file or network access.
"""

from __future__ import annotations

import ipaddress

from mailgw.config.schema import Config, ListenerConfig

TLS_LABELS = {"none": "plaintext", "starttls": "STARTTLS", "implicit": "implicit TLS"}
# Protocols where a client logs in to read mail or to send it: without TLS
# and without trust nobody can authenticate there.
_LOGIN_PROTOCOLS = ("submission", "pop3", "imap")


def endpoint(address: str, port: int) -> str:
    """``127.0.0.1:25`` or ``[::1]:25``."""
    try:
        version = ipaddress.ip_address(address).version
    except ValueError:
        version = 4
    return f"[{address}]:{port}" if version == 6 else f"{address}:{port}"


def auth_policy(listener: ListenerConfig) -> str:
    """How the listener treats passwords (servers enforce the same rule)."""
    if listener.trusted:
        return "AUTH allowed in plaintext (trusted)"
    if listener.tls == "implicit":
        return "AUTH over TLS only (always TLS)"
    if listener.tls == "starttls":
        return "AUTH over TLS only"
    if listener.protocol in _LOGIN_PROTOCOLS:
        return "no AUTH: plaintext, not trusted (nobody can log in)"
    return "no AUTH: plaintext, not trusted"


def warnings(config: Config) -> list[str]:
    """Things that are valid but probably not meant."""
    result: list[str] = []
    for listener in config.listeners:
        if not listener.trusted:
            continue
        try:
            address = ipaddress.ip_address(listener.address)
        except ValueError:
            continue
        if address.is_unspecified or address.is_global:
            result.append(
                f"listener {listener.name} is trusted (plaintext passwords) but listens "
                f"on {endpoint(listener.address, listener.port)}, not only on a LAN address"
            )
    return result


def describe(config: Config) -> str:
    """The summary table: several lines, no trailing newline (for ``echo``)."""
    rows = [
        (
            listener.name,
            listener.protocol,
            endpoint(listener.address, listener.port),
            TLS_LABELS.get(listener.tls, listener.tls),
            auth_policy(listener),
        )
        for listener in config.listeners
    ]
    header = ("NAME", "PROTOCOL", "ADDRESS:PORT", "TLS", "AUTHENTICATION")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]

    def line(row: tuple[str, ...]) -> str:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:4])]
        return "  " + "  ".join([*cells, row[4]])

    tls = f"cert {config.tls.cert}, key {config.tls.key}" if config.tls else "none"
    networks = ", ".join(str(n) for n in config.relay_networks) or "none (AUTH needed to relay)"
    out = [
        f"Configuration:   {config.source}",
        f"Host name:       {config.hostname}",
        f"Domains:         {', '.join(config.domains)}",
        f"Data directory:  {config.data_dir}",
        f"Users file:      {config.passwd_path}",
        f"TLS certificate: {tls}",
        f"Relay networks:  {networks}",
        f"Aliases:         {len(config.aliases)}; catch-all for: "
        + (", ".join(sorted(config.catch_all)) or "none"),
        "Listeners:",
        line(header),
        *(line(row) for row in rows),
    ]
    out.extend(f"Warning: {text}" for text in warnings(config))
    return "\n".join(out)
