"""The queue runner against a real spool and store and a scripted SMTP client."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
from pathlib import Path
from typing import Any

import pytest

from mailgw.relay.runner import QueueRunner
from tests.relay.runner_fixtures import ISP, MX, Harness, make_harness


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return make_harness(tmp_path)


def only(h: Harness) -> Any:
    (entry,) = h.spool.entries()
    return entry


def test_delivers_and_removes(h: Harness) -> None:
    qid = h.enqueue("alice@office.example", ["bob@remote.example", "carol@remote.example"])
    stats = h.run()
    assert stats.delivered == 2 and stats.deferred == 0
    assert h.spool.entries() == []
    assert not h.spool.message_path(qid).exists()
    ((route, batch, helo),) = h.client.calls
    assert (route, helo) == ("isp", "mail.office.example")
    (msg,) = batch
    assert msg.id == qid and msg.sender == "alice@office.example"
    assert msg.recipients == ["bob@remote.example", "carol@remote.example"]
    assert msg.read().startswith(b"From: <alice@office.example>\r\n")


def test_bare_lf_is_never_relayed_as_is(h: Harness) -> None:
    h.enqueue("alice@office.example", ["bob@remote.example"], b"Subject: x\n\nline\nbare\rcr\n")
    h.run()
    (msg,) = h.client.messages()
    assert msg.read() == b"Subject: x\r\n\r\nline\r\nbare\r\ncr\r\n"


def test_temporary_failure_backs_off_exponentially(h: Harness) -> None:
    h.client.reply = lambda m, r: "451 4.7.1 try later"
    start = h.clock.now
    h.enqueue("alice@office.example", ["bob@remote.example"])
    stats = h.run()
    assert stats.deferred == 1
    entry = only(h)
    assert entry.attempts == 1 and entry.next_attempt == start + 300
    (rcpt,) = entry.recipients
    assert (rcpt.state, rcpt.attempts, rcpt.last_reply) == ("pending", 1, "451 4.7.1 try later")
    # not due yet: nothing happens
    h.clock.now += 299
    assert h.run().entries == 0 and len(h.client.calls) == 1
    h.clock.now += 1
    h.run()
    assert only(h).attempts == 2 and only(h).next_attempt == h.clock.now + 600
    h.client.reply = lambda m, r: "250 ok"
    h.clock.now += 600
    assert h.run().delivered == 1
    assert h.spool.entries() == []


def test_targets_unavailable_is_temporary_for_everyone(h: Harness) -> None:
    h.client.down = True
    h.enqueue("alice@office.example", ["a@remote.example", "b@remote.example"])
    stats = h.run()
    assert stats.deferred == 2 and stats.failed == 0 and stats.dsns == 0
    for rcpt in only(h).recipients:
        assert rcpt.last_reply.startswith("451 4.4.1 connect to smarthost.test")


def test_permanent_failure_bounces_to_a_local_sender(h: Harness) -> None:
    h.client.reply = lambda m, r: (
        "550 5.1.1 <nobody@remote.example>: Recipient address rejected"
        if r.startswith("nobody")
        else "250 2.0.0 Ok"
    )
    h.enqueue("alice@office.example", ["bob@remote.example", "nobody@remote.example"])
    stats = h.run()
    # the DSN was queued and, its recipient being local, delivered in the same run
    assert (stats.delivered, stats.failed, stats.dsns) == (2, 1, 1)
    assert stats.local == 1
    assert h.spool.entries() == []
    (dsn,) = h.inbox("alice")
    assert dsn.startswith(b"Return-Path: <>\r\nDelivered-To: alice@office.example\r\n")
    msg: Any = email.message_from_bytes(dsn, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    status = msg.get_payload()[1].get_payload()
    text = "\n".join(str(part) for part in status)
    assert "Final-Recipient: rfc822; nobody@remote.example" in text
    assert "Status: 5.1.1" in text and "Action: failed" in text
    assert "Remote-MTA: dns; smarthost.test" in text
    assert "bob@remote.example" not in text.split("Final-Recipient")[1]


def test_delivered_message_is_sent_once_and_failed_recipient_not_retried(h: Harness) -> None:
    h.client.reply = lambda m, r: (
        "250 ok" if not m.sender else "550 no" if r.startswith("x") else "451 later"
    )
    h.enqueue("bob@remote.example", ["x@remote.example", "y@remote.example"])
    h.run()
    entry = next(e for e in h.spool.entries() if e.source == "smtp")
    assert [r.state for r in entry.recipients] == ["failed", "pending"]
    assert entry.recipients[0].dsn_sent
    h.client.reply = lambda m, r: "250 ok"
    h.clock.now += 300
    h.run()
    sent = [(m.sender, m.recipients) for m in h.client.messages()]
    # the retry carries only y; the DSN to bob went out once
    assert sent.count(("bob@remote.example", ["y@remote.example"])) == 1
    assert sent.count(("", ["bob@remote.example"])) == 1
    assert h.spool.entries() == []


def test_lifetime_expiry_bounces_with_5_4_7(tmp_path: Path) -> None:
    h = make_harness(tmp_path, lifetime=1000.0, delay_warning=None)
    h.client.down = True
    h.enqueue("alice@office.example", ["bob@remote.example"])
    h.run()
    h.clock.now += 1000
    stats = h.run()
    assert stats.failed == 1 and stats.dsns == 1
    (dsn,) = h.inbox("alice")
    assert b"Status: 5.4.7" in dsn
    assert b"delivery time expired" in dsn
    assert b"Diagnostic-Code: smtp; 451 4.4.1 connect to smarthost.test" in dsn
    assert h.spool.entries() == []


def test_delay_warning_once(tmp_path: Path) -> None:
    h = make_harness(tmp_path, lifetime=10_000.0, delay_warning=250.0)
    h.client.reply = lambda m, r: "421 4.3.2 busy"
    h.enqueue("alice@office.example", ["bob@remote.example"])
    h.run()
    assert h.inbox("alice") == []
    h.clock.now += 300
    h.run()
    (warning,) = h.inbox("alice")
    assert b"Action: delayed" in warning and b"Status: 4.3.2" in warning
    assert b"Will-Retry-Until:" in warning
    entry = only(h)
    assert entry.warned and entry.recipients[0].state == "pending"
    h.clock.now += 600
    h.run()
    assert len(h.inbox("alice")) == 1


def test_null_sender_is_never_bounced(h: Harness) -> None:
    h.client.reply = lambda m, r: "550 5.1.1 unknown"
    h.enqueue("", ["bob@remote.example"])
    stats = h.run()
    assert stats.failed == 1 and stats.dropped == 1 and stats.dsns == 0
    assert h.spool.entries() == []
    assert len(h.client.calls) == 1


def test_auth_failure_holds_the_route_without_bouncing(tmp_path: Path) -> None:
    h = make_harness(tmp_path, postmaster="postmaster@office.example")
    h.client.auth_fail = "535 5.7.8 Error: authentication failed"
    first = h.enqueue("alice@office.example", ["bob@remote.example"])
    # a message not yet due, also on the isp route: held as well
    later = h.enqueue("alice@office.example", ["carol@remote.example"])
    e = h.spool.load(later)
    e.next_attempt = h.clock.now + 10_000
    h.spool.save(e)
    # and one on another route: untouched
    other = h.enqueue("alice@office.example", ["dave@mx.test"])
    stats = h.run()
    assert stats.failed == 0 and stats.dsns == 0 and stats.held_routes == ["isp"]
    reason = "smarthost authentication failed: 535 5.7.8 Error: authentication failed"
    for qid in (first, later):
        entry = h.spool.load(qid)
        assert entry.held and entry.held_reason == reason
        assert entry.recipients[0].state == "pending"
    assert h.spool.load(first).recipients[0].attempts == 0
    assert other not in {e.id for e in h.spool.entries()}  # delivered over "direct"
    # the postmaster got one notice (delivered locally), and not a second one this hour
    (notice,) = h.inbox("postmaster")
    assert b"route isp held" in notice and reason.encode() in notice
    entry = h.spool.release(first)
    entry.next_attempt = h.clock.now  # release() uses the real clock
    h.spool.save(entry)
    h.run()
    assert len(h.inbox("postmaster")) == 1
    assert h.spool.load(first).held
    assert json.loads((h.spool.root / "notices.json").read_text())["route-held:isp"] > 0


def test_recovery_makes_the_whole_route_due(h: Harness) -> None:
    h.client.down = True
    a = h.enqueue("alice@office.example", ["a@remote.example"])
    h.run()
    h.clock.now += 100
    b = h.enqueue("alice@office.example", ["b@remote.example"])
    h.run()
    assert h.spool.load(a).next_attempt < h.spool.load(b).next_attempt
    # the link is back; only a is due, yet b leaves in the same run
    h.client.down = False
    h.clock.now = h.spool.load(a).next_attempt
    stats = h.run()
    assert stats.delivered == 2
    assert h.spool.entries() == []
    delivered = [m.id for m in h.client.messages()][-2:]
    assert delivered == [a, b]


def test_local_recipients_are_delivered_into_the_store(h: Harness) -> None:
    h.enqueue("bob@remote.example", ["alice@office.example", "ghost@office.example"])
    stats = h.run()
    assert stats.local == 1 and stats.failed == 1 and stats.dsns == 1
    (copy,) = h.inbox("alice")
    assert copy.startswith(b"Return-Path: <bob@remote.example>\r\n")
    # the DSN about ghost went to bob through the smarthost
    (dsn,) = h.client.messages()
    assert dsn.sender == "" and dsn.recipients == ["bob@remote.example"]
    assert b"Final-Recipient: rfc822; ghost@office.example" in dsn.read()


def test_mx_routes_group_by_domain(h: Harness) -> None:
    h.enqueue("alice@office.example", ["a@mx.test", "b@mx.test", "c@remote.example"])
    stats = h.run()
    assert stats.delivered == 3 and stats.failed == 0
    assert sorted(h.resolved) == [("direct", "mx.test"), ("isp", "isp")]
    by_route = {route: [m.recipients for m in batch] for route, batch, _ in h.client.calls}
    assert by_route["direct"] == [["a@mx.test", "b@mx.test"]]
    assert by_route["isp"][0] == ["c@remote.example"]


def test_nxdomain_on_the_mx_route_bounces(tmp_path: Path) -> None:
    nx_route = MX.__class__(**{**MX.__dict__, "domains": ("mx.test", "nxdomain.test")})
    h = make_harness(tmp_path, routes=(ISP, nx_route))
    h.enqueue("alice@office.example", ["x@nxdomain.test"])
    stats = h.run()
    assert stats.failed == 1 and stats.dsns == 1
    assert b"Status: 5.1.2" in h.inbox("alice")[0]


def test_batches_and_concurrency_per_destination(tmp_path: Path) -> None:
    route = ISP.__class__(**{**ISP.__dict__, "max_per_connection": 3, "concurrency": 2})
    h = make_harness(tmp_path, routes=(route, MX))
    h.client.delay = 0.01
    for i in range(10):
        h.enqueue("alice@office.example", [f"r{i}@remote.example"])
    stats = h.run()
    assert stats.delivered == 10
    assert sorted(len(batch) for _, batch, _ in h.client.calls) == [1, 3, 3, 3]
    assert h.client.max_active == 2


def test_locked_entry_is_skipped(h: Harness) -> None:
    qid = h.enqueue("alice@office.example", ["bob@remote.example"])
    with h.spool.attempt_lock(qid):
        stats = h.run()
    assert stats.busy == 1 and h.client.calls == []
    assert h.run().delivered == 1


def test_run_forever_wakes_and_stops(h: Harness) -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(h.runner.run_forever(stop))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if h.runner._wake is not None:
                break
        await asyncio.to_thread(h.enqueue, "alice@office.example", ["bob@remote.example"])
        h.runner.wake()
        for _ in range(500):
            await asyncio.sleep(0.01)
            if h.client.calls:
                break
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
    assert len(h.client.calls) == 1
    assert h.spool.entries() == []


def test_stop_before_delivery_counts_no_attempt(h: Harness) -> None:
    h.enqueue("alice@office.example", ["bob@remote.example"])
    stop = asyncio.Event()
    stop.set()
    h.runner._stop = stop
    h.run()
    assert h.client.calls == []
    entry = only(h)
    assert entry.attempts == 0 and entry.recipients[0].attempts == 0


def test_default_runner_builds_its_own_parts(tmp_path: Path) -> None:
    h = make_harness(tmp_path)
    runner = QueueRunner(h.config, h.spool)
    assert runner.router.route_for("x.example").name == "isp"
    assert runner.router.route_for("mx.test").name == "direct"
