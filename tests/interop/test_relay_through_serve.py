"""The whole outbound path as a user meets it: submission -> spool -> Postfix.

``mailgw serve`` (a real process) with a ``relay:`` section whose smarthost
is a private Postfix; alice submits with STARTTLS and AUTH; the message
leaves through the runner inside serve and lands in Postfix's Maildir exactly
once, with canonical line endings and our Received line.
"""

from __future__ import annotations

import email
import time
from pathlib import Path

from tests.e2e_util import DOMAIN, ServeProcess, make_certs, make_message, smtp_send
from tests.interop.peers import LOOPBACK, PostfixInstance


def test_submission_is_relayed_to_the_smarthost(postfix: PostfixInstance, tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    relay = {
        "relay": {
            "retry_min": "1s",
            "routes": [
                {
                    "name": "isp",
                    "kind": "smarthost",
                    "hosts": [f"{LOOPBACK}:{postfix.port}"],
                    "tls": "none",
                    "tls_required": False,
                    "tls_verify": False,
                }
            ],
        }
    }
    with ServeProcess(tmp_path / "serve", certs=certs, extra_config=relay) as serve:
        serve.add_user("alice", "alice-pw")
        body = b"To the outside.\r\n.leading dot\r\n"
        msg = make_message(
            "relayed",
            body,
            sender=f"alice@{DOMAIN}",
            to="bob@peer.test",
            message_id="<through-serve@example.org>",
        )
        smtp_send(
            serve.port("submission"),
            msg,
            sender=f"alice@{DOMAIN}",
            rcpts=["bob@peer.test"],
            starttls=certs.client_context(),
            login=("alice", "alice-pw"),
        )
        postfix.wait_for_messages(1, "bob", timeout=60)
        time.sleep(0.5)  # a duplicate would arrive right behind the first copy
        (path,) = postfix.messages("bob")
        got = path.read_bytes()
        assert serve.stop() == 0
    parsed = email.message_from_bytes(got)
    assert parsed["Message-ID"] == "<through-serve@example.org>"
    # our Received line travelled with it, and the body is byte-identical (Postfix stores LF)
    assert b"by " in got and b"(mailgw) with ESMTPSA" in got
    assert got.replace(b"\r\n", b"\n").endswith(body.replace(b"\r\n", b"\n"))
    assert list((serve.data / "queue" / "meta").glob("*.json")) == []
