"""Faults: killed workers, a broker outage, a mail server and a webhook receiver that fail for a
while. Each ends with every owed notification delivered and none delivered twice, except e-mails
caught between the SMTP server's acceptance and the row being marked done (counted, bounded by
the number of kills)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from sqlalchemy import select

from tests.workers import harness
from tests.workers.harness import RedisServer, SmtpSink, WebhookReceiver, pid_of_local_port, report, wait_until

pytestmark = [pytest.mark.workers, pytest.mark.postgres_only]

redis_server = harness.redis_server
rig_factory = harness.rig_factory


@pytest.fixture()
def hooks() -> Any:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def _kill_a_delivering_child(rig: Any, smtp: SmtpSink, worker: Any, killed: set[int]) -> int:
    """SIGKILL a pool process (not one killed before) that is talking to the SMTP server right now;
    returns its pid."""
    def delivering() -> int | None:
        with smtp.lock:
            peers = list(smtp.active_peers)
        for peer in peers:
            pid = pid_of_local_port(peer)
            if pid is not None and pid not in killed and pid in worker.pool_children():
                return pid
        return None

    for _ in range(3):
        pid = int(wait_until(delivering, 30, 0.05, "a delivery in progress"))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended between the look and the kill: look again
            killed.add(pid)
            continue
        killed.add(pid)
        return pid
    raise AssertionError("every delivering process ended before it could be killed")


@pytest.mark.parametrize("accepted", [False, True], ids=["before-acceptance", "after-acceptance"])
def test_killing_a_worker_child_during_delivery(redis_server: RedisServer, rig_factory: Any, hooks: Any,
                                                accepted: bool) -> None:
    smtp = SmtpSink(delay=1.0, accept_then_wait=accepted).start()
    try:
        rig = rig_factory(redis_server.url, smtp, hooks)
        worker = rig.worker()
        rig.setup_firms(4)
        for i in range(4):
            rig.publish_pair(i)
        kills = 0
        killed: set[int] = set()
        for _ in range(2):
            _kill_a_delivering_child(rig, smtp, worker, killed)
            kills += 1
        rig.wait_settled(8, 4, 90, "recovery")
        time.sleep(1)
        tally = rig.tally() | {"kills": kills}
        report(f"kill -9 worker child ({'after' if accepted else 'before'} the server kept the message)", tally)
        assert tally["emails_lost"] == 0 and tally["webhooks_lost"] == 0
        # Killed after the server kept the message but before the row was marked: the one window
        # where an e-mail is sent twice (same Message-ID, so the receiving side can drop it).
        assert tally["emails_doubled"] <= (kills if accepted else 0) and tally["webhooks_doubled"] == 0
        assert tally["failed_rows"] == 0
    finally:
        smtp.stop()


def _deliveries_in_flight(rig: Any, smtp: SmtpSink) -> int:
    """Four pairs published, their e-mails going to a slow SMTP server: how many it is taking."""
    rig.setup_firms(4)
    for i in range(4):
        rig.publish_pair(i)
    wait_until(lambda: smtp.active_peers, 30, 0.05, "a delivery in progress")
    return len(smtp.active_peers)


def test_killing_the_worker_parent_then_starting_another(redis_server: RedisServer, rig_factory: Any,
                                                          hooks: Any) -> None:
    smtp = SmtpSink(delay=1.0).start()
    try:
        rig = rig_factory(redis_server.url, smtp, hooks)
        worker = rig.worker()
        in_flight = _deliveries_in_flight(rig, smtp)
        worker.kill_parent()
        rig.worker()
        rig.wait_settled(8, 4, 90, "recovery")
        time.sleep(1)
        tally = rig.tally() | {"in_flight_at_kill": in_flight}
        report("kill -9 worker parent", tally)
        assert tally["emails_lost"] == 0 and tally["webhooks_lost"] == 0
        # Only a message the server was already taking when the parent died may arrive twice.
        assert tally["emails_doubled"] <= in_flight + 1 and tally["webhooks_doubled"] == 0
        assert tally["failed_rows"] == 0
    finally:
        smtp.stop()


def test_redis_down_while_listings_are_created(redis_server: RedisServer, rig_factory: Any, hooks: Any) -> None:
    smtp = SmtpSink().start()
    try:
        rig = rig_factory(redis_server.url, smtp, hooks)
        worker = rig.worker()
        rig.setup_firms(50)
        # Redis goes away from a running service, not from a worker still starting up.
        worker.scheduling()
        redis_server.stop()
        started = time.monotonic()
        for i in range(50):
            rig.publish_pair(i)  # 100 listings, each its own committed transaction
        created_in = time.monotonic() - started
        from matchmaking.models import Listing

        with rig.db() as session:
            assert len(session.scalars(select(Listing.id)).all()) == 100
        time.sleep(2)
        redis_server.start()
        rig.wait_settled(100, 50, 150, "delivery after Redis is back", interval=0.5)
        time.sleep(1)
        tally = rig.tally() | {"seconds_to_create_100_while_down": round(created_in, 1)}
        report("redis stopped during 100 publications", tally)
        assert tally["emails_owed"] == 100 and tally["webhooks_owed"] == 50
        assert tally["emails_lost"] == tally["emails_doubled"] == 0
        assert tally["webhooks_lost"] == tally["webhooks_doubled"] == 0
        assert created_in < 60
    finally:
        smtp.stop()


def test_redis_down_while_a_delivery_is_in_progress(redis_server: RedisServer, rig_factory: Any, hooks: Any) -> None:
    # The worker holds unacknowledged messages when Redis goes; it must stay up and lose nothing.
    smtp = SmtpSink(delay=1.0).start()
    try:
        rig = rig_factory(redis_server.url, smtp, hooks)
        worker = rig.worker()
        in_flight = _deliveries_in_flight(rig, smtp)
        redis_server.stop()
        time.sleep(2)
        redis_server.start()
        rig.wait_settled(8, 4, 90, "delivery after Redis is back", interval=0.5)
        time.sleep(1)
        tally = rig.tally() | {"in_flight_when_redis_stopped": in_flight}
        report("redis stopped during a delivery", tally)
        assert worker.process is not None and worker.process.poll() is None, "the worker exited"
        assert tally["emails_lost"] == 0 and tally["webhooks_lost"] == 0 and tally["failed_rows"] == 0
        # A task running when the connection drops is cancelled and delivered again: the e-mails the
        # server was taking may arrive twice (with the same Message-ID), nothing else.
        assert tally["emails_doubled"] <= in_flight and tally["webhooks_doubled"] == 0
    finally:
        smtp.stop()


def test_smtp_server_down_then_up(redis_server: RedisServer, rig_factory: Any, hooks: Any) -> None:
    from matchmaking.models import OutboxEvent

    smtp = SmtpSink()  # port reserved, server not started: connections are refused
    try:
        rig = rig_factory(redis_server.url, smtp, hooks)
        rig.worker()
        rig.setup_firms(3)
        for i in range(3):
            rig.publish_pair(i)

        def retried() -> bool:
            with rig.db() as session:
                rows = session.scalars(select(OutboxEvent).where(OutboxEvent.kind == "deliver.email")).all()
                return len(rows) == 6 and all(r.attempts >= 2 and r.last_error for r in rows)

        wait_until(retried, 60, 0.3, "failed attempts while the SMTP server is down")
        smtp.start()
        rig.wait_settled(6, 3, 60, "delivery after SMTP is back")
        time.sleep(1)
        tally = rig.tally()
        report("SMTP down then up", tally)
        assert tally["emails_lost"] == tally["emails_doubled"] == 0
        assert tally["failed_rows"] == 0
    finally:
        smtp.stop()


def test_webhook_receiver_failing_then_recovering(redis_server: RedisServer, rig_factory: Any, hooks: Any) -> None:
    hooks.status_for = lambda n: 500 if n < 8 else 200
    smtp = SmtpSink().start()
    try:
        rig = rig_factory(redis_server.url, smtp, hooks)
        rig.worker()
        rig.setup_firms(3)
        for i in range(3):
            rig.publish_pair(i)
        rig.wait_settled(6, 3, 60, "webhooks after the receiver recovers")
        time.sleep(1)
        tally = rig.tally() | {"http_500_answered": sum(1 for _, s in hooks.requests if s == 500)}
        report("webhook 500 then 200", tally)
        assert tally["http_500_answered"] == 8
        assert tally["webhooks_lost"] == tally["webhooks_doubled"] == 0
        assert hooks.bad_signatures == 0
    finally:
        smtp.stop()
