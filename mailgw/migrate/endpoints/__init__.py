"""Migration endpoints: IMAP, POP3, Maildir, mbox.  The protocols are in ``base``."""
