"""Configuration: schema, YAML loader with file:line errors, embedded defaults."""

from mailgw.config.loader import load_config
from mailgw.config.schema import Config, LimitsConfig, ListenerConfig, TlsConfig

__all__ = ["Config", "LimitsConfig", "ListenerConfig", "TlsConfig", "load_config"]
