"""mailgw: a mail gateway and migration utility for small offices."""

__version__ = "0.1.0"
