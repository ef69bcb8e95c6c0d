"""The outbound relay: durable spool, routing, SMTP delivery, DSNs, the runner.

Layout and APIs: ``docs/contracts.md`` ("mailgw.relay").  This package
``__init__`` imports nothing on purpose: ``mailgw send`` imports
``mailgw.relay.spool`` and ``mailgw.relay.sendmail`` only, and must start fast.
"""
