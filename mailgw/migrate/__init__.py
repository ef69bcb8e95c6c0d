"""``mailgw migrate``: copy mailboxes between POP3, IMAP, Maildir and mbox.

Endpoints (``endpoints/``) speak the protocols or read the files; the engine
(``engine.py``) plans and copies folder by folder, recording every copy in a
SQLite state file (``state.py``) so that re-runs and runs after a crash copy
only what is missing.  See docs/architecture.md and docs/contracts.md.
"""
