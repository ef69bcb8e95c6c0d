"""SMTP reply texts, named after their codes.

Theory of operation
-------------------
Every reply mailgw's own code sends is a constant here, so the server, the
relay and the tests agree on one text.  A name is ``R<code>_<meaning>``; the
text carries the RFC 3463 enhanced status code after the basic code.  We do
not advertise ENHANCEDSTATUSCODES (RFC 2034 would then require a code on every
reply, and aiosmtpd's own replies have none); clients still show them to
users.  ``{addr}``, ``{id}`` and similar fields are filled with ``str.format``.

Enhanced codes used (RFC 3463 section 3, RFC 5248 registry):

* 2.0.0 other/undefined success; 2.1.0 sender ok; 2.1.5 destination valid
* 4.3.0 / 4.3.2 mail system: other error / system not accepting messages
* 4.5.3 / 5.5.3 too many recipients (RFC 3463 section 3.6)
* 5.1.1 bad destination mailbox; 5.1.3 bad destination mailbox syntax
* 5.5.1 invalid command; 5.5.2 syntax error
* 5.6.11 invalid characters (RFC 6531/RFC 5248: bare CR or LF)
* 5.7.1 delivery not authorized (relay denied); 5.7.0 / 5.7.8 / 5.7.11 auth
"""

from __future__ import annotations

R221_BYE = "221 2.0.0 Bye"
R235_AUTH_OK = "235 2.7.0 Authentication successful"
R250_OK = "250 2.0.0 Ok"
R250_SENDER_OK = "250 2.1.0 Ok"
R250_RCPT_OK = "250 2.1.5 Ok"
R250_QUEUED = "250 2.0.0 Ok: queued as {id}"
# RFC 5321 section 3.5.3: a server that does not verify says 252.
R252_VRFY = "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery"

R421_SHUTDOWN = "421 4.3.2 {host} Service shutting down, closing transmission channel"
R451_LOCAL_ERROR = "451 4.3.0 Error: local delivery failed, please try again later"
R451_NO_RELAY_QUEUE = (
    "451 4.3.2 <{addr}>: relaying is not available yet: outbound queue not configured"
)
R452_TOO_MANY_RCPTS = "452 4.5.3 Error: too many recipients"
R454_TLS_UNAVAILABLE = "454 4.7.0 TLS not available"

R500_LINE_TOO_LONG = "500 Command line too long"  # aiosmtpd's text, kept as it is
R501_BAD_BASE64 = "501 5.5.2 Can't decode base64"
R501_BAD_PLAIN = "501 5.5.2 Can't split auth value"
R501_AUTH_ABORTED = "501 5.7.0 Auth aborted"
R501_VRFY_SYNTAX = "501 5.5.4 Syntax: VRFY <address>"
R501_BAD_ADDRESS = "501 5.1.3 <{addr}>: Bad recipient address syntax"
R502_EXPN = "502 5.5.1 EXPN not available"
R530_AUTH_REQUIRED = "530 5.7.0 Authentication required"  # aiosmtpd's text
R535_AUTH_FAILED = "535 5.7.8 Authentication credentials invalid"
# aiosmtpd's reply to AUTH on a plaintext listener that needs TLS (RFC 4954 section 6)
R538_ENCRYPTION_REQUIRED = "538 5.7.11 Encryption required for requested authentication mechanism"
R550_NO_SUCH_USER = "550 5.1.1 <{addr}>: Recipient address rejected: User unknown"
R550_RELAY_DENIED = "550 5.7.1 <{addr}>: Relay access denied"
# RFC 6531 section 3.4: a non-ASCII address needs the SMTPUTF8 MAIL parameter.
R553_NEED_SMTPUTF8 = "553 5.6.7 Must declare SMTPUTF8 to send unicode address"
R553_BAD_SENDER = "553 5.1.7 <{addr}>: Sender address rejected: bad address syntax"
R554_BARE_LF = (
    "554 5.6.11 Error: message contains bare CR or LF; "
    "lines must end with CRLF (RFC 5321 section 2.3.8)"
)
R554_STARTTLS_PIPELINED = "554 5.5.1 Error: data pipelined after STARTTLS, closing connection"
R554_NO_VALID_RCPTS = "554 5.5.1 Error: no valid recipients"
