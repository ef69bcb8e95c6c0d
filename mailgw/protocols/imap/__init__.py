"""IMAP4rev1 protocol support (RFC 3501).

Only the pure helpers live here so far; :mod:`mailgw.protocols.imap.utf7` is the
modified UTF-7 mailbox-name codec shared by the IMAP core and the Maildir store.
"""
