"""A human summary of a ``Config``: what listens where, and under which rules.

Printed by ``mailgw config check`` and by ``mailgw serve`` at start.  Pure
text from the dataclasses: no file or network access.  With a ``relay:``
section it also shows the outbound queue (spool directory, lifetime, retry
schedule) and every route: kind, hosts or MX, domains, TLS policy and the
AUTH user.  A password is never shown or read: only the name of the file or
environment variable it comes from.
"""

from __future__ import annotations

import ipaddress

from mailgw.config.schema import Config, ListenerConfig, RelayConfig, RouteConfig

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
    if config.relay is not None:
        for route in config.relay.routes:
            if route.kind != "smarthost" or route.username is None:
                continue
            if not route.tls_required or route.tls == "none":
                result.append(
                    f"route {route.name} may send the password of {route.username} "
                    "in plaintext (tls_required is off)"
                )
            elif not route.tls_verify:
                result.append(
                    f"route {route.name} sends the password of {route.username} to a "
                    "host whose certificate is not checked (tls_verify is off)"
                )
    return result


_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def duration(seconds: float) -> str:
    """``5d``, ``4h``, ``1h30m``, ``300`` -> ``5m``, ``90`` -> ``1m30s``, ``0.5`` -> ``0.5s``."""
    if seconds != int(seconds) or seconds < 60:
        return f"{seconds:g}s"
    rest = int(seconds)
    parts: list[str] = []
    for unit, size in _UNITS:
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    if rest:
        parts.append(f"{rest}s")
    return "".join(parts)


def route_tls(route: RouteConfig) -> str:
    """``STARTTLS, required, certificate verified`` and the like."""
    if route.tls == "none":
        return "none (plaintext)"
    mode = TLS_LABELS.get(route.tls, route.tls)
    parts = [mode, "required" if route.tls_required else "opportunistic"]
    if route.tls_verify:
        ca = f" against {route.ca_file}" if route.ca_file is not None else ""
        parts.append(f"certificate verified{ca}")
    else:
        parts.append("certificate not verified")
    return ", ".join(parts)


def route_auth(route: RouteConfig) -> str:
    """The AUTH user and where the password comes from (never the password)."""
    if route.username is None:
        return "none"
    if route.password_file is not None:
        source = f"password from file {route.password_file}"
    elif route.password_env is not None:
        source = f"password from ${route.password_env}"
    else:  # the loader refuses this; say so rather than guess
        source = "no password configured"
    return f"{route.username} ({source})"


def route_lines(route: RouteConfig) -> list[str]:
    """One route: a heading line and indented details."""
    where = ", ".join(route.domains) if route.domains else "every other domain (default route)"
    if route.kind == "smarthost":
        hosts = ", ".join(h if _has_port(h) else endpoint(h, route.port) for h in route.hosts)
        if len(route.hosts) > 1:
            hosts += " (in this order: failover)"
    else:
        hosts = f"MX of the recipient domain, else its A/AAAA; port {route.port}"
    return [
        f"  route {route.name} ({route.kind}) for {where}",
        f"    hosts:  {hosts}",
        f"    TLS:    {route_tls(route)}",
        f"    AUTH:   {route_auth(route)}",
        f"    limits: {route.max_per_connection} messages per connection, "
        f"{route.concurrency} connections per destination",
    ]


def _has_port(host: str) -> bool:
    """``smtp.x:2525`` and ``[2001:db8::1]:587`` carry a port; ``2001:db8::1`` does not."""
    if host.startswith("["):
        return "]:" in host
    return host.count(":") == 1


def relay_lines(config: Config) -> list[str]:
    """The ``relay:`` section: queue, retry schedule, routes."""
    relay: RelayConfig | None = config.relay
    if relay is None:
        return [
            "Relay:           off (no relay: section; mail for other domains is answered 451 4.3.2)"
        ]
    growth = (
        f"doubling up to every {duration(relay.retry_max)}"
        if relay.retry_max > relay.retry_min
        else "fixed"
    )
    warn = f"after {duration(relay.delay_warning)}" if relay.delay_warning is not None else "never"
    resolver = (
        ", ".join(endpoint(ns, relay.resolver_port) for ns in relay.nameservers)
        if relay.nameservers
        else "the system's (/etc/resolv.conf)"
    )
    postmaster = (
        f"{relay.postmaster} (at most one notice per reason every "
        f"{duration(relay.notice_interval)})"
        if relay.postmaster
        else "none (no notices)"
    )
    out = [
        "Relay:",
        f"  spool directory: {config.queue_dir}",
        f"  lifetime:        {duration(relay.lifetime)} (then a DSN: delivery time expired)",
        f"  retries:         first after {duration(relay.retry_min)}, {growth}, +-20% jitter",
        f"  delay DSN:       {warn}",
        f"  postmaster:      {postmaster}",
        f"  DNS resolver:    {resolver}",
    ]
    for route in relay.routes:
        out.extend(route_lines(route))
    return out


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
        *relay_lines(config),
    ]
    out.extend(f"Warning: {text}" for text in warnings(config))
    return "\n".join(out)
