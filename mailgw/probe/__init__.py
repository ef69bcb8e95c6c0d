"""``mailgw probe``: what a mail server offers and whether it is healthy.

Per-protocol probes produce :class:`mailgw.probe.model.ProbeResult` records;
renderers turn them into a table, JSON or a Nagios status line.
"""
