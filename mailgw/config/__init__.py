"""Configuration: schema, YAML loader with file:line errors, embedded defaults.

``load_config`` is imported lazily: ``mailgw send`` with embedded defaults
must not pay for PyYAML (bench/send_startup.py).
"""

from typing import TYPE_CHECKING, Any

from mailgw.config.schema import Config, LimitsConfig, ListenerConfig, TlsConfig

if TYPE_CHECKING:
    from mailgw.config.loader import load_config


def __getattr__(name: str) -> Any:
    if name == "load_config":
        from mailgw.config.loader import load_config

        return load_config
    raise AttributeError(f"module 'mailgw.config' has no attribute {name!r}")


__all__ = ["Config", "LimitsConfig", "ListenerConfig", "TlsConfig", "load_config"]
