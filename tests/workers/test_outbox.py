"""The outbox's bookkeeping: claims, leases, backoff, giving up, and what the sweep publishes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from matchmaking.models import OutboxStatus, utcnow
from matchmaking.services import outbox, relay


def _event(session: Any, key: str = "k1") -> Any:
    event = outbox.emit(session, "deliver.email", {"notification_id": 1}, key)
    session.commit()
    return event


def test_only_one_worker_claims_a_row_until_its_lease_lapses(wsession: Any) -> None:
    event = _event(wsession)
    now = utcnow()
    assert outbox.claim(wsession, event.id, 60, now) is not None
    assert outbox.claim(wsession, event.id, 60, now + timedelta(seconds=30)) is None
    again = outbox.claim(wsession, event.id, 60, now + timedelta(seconds=61))
    assert again is not None and again.attempts == 2  # a claim counts, even if its worker then dies


def test_a_done_or_failed_row_is_never_claimed(wsession: Any) -> None:
    event = _event(wsession)
    outbox.record_success(event)
    wsession.commit()
    assert outbox.claim(wsession, event.id, 60) is None


def test_failures_back_off_then_end_failed(wsession: Any) -> None:
    event = _event(wsession)
    settings = relay.Settings(retry_base_s=10, retry_max_s=25, max_attempts=3)
    now = utcnow()
    delays = []
    for attempt in range(3):
        claimed = outbox.claim(wsession, event.id, 60, now)
        assert claimed is not None, attempt
        outcome = relay.fail(claimed, RuntimeError("SMTP down"), settings, now)
        delays.append((claimed.next_attempt_at - now).total_seconds())
        now = claimed.next_attempt_at
    assert outcome == "failed" and event.status is OutboxStatus.failed
    assert delays[:2] == [10, 20]
    assert "SMTP down" in (event.last_error or "")


def test_give_up_is_immediate(wsession: Any) -> None:
    event = _event(wsession)
    claimed = outbox.claim(wsession, event.id, 60)
    assert relay.fail(claimed, relay.GiveUp("address refused"), relay.Settings()) == "failed"


def test_a_row_whose_worker_keeps_dying_ends_failed(wsession: Any) -> None:
    event = _event(wsession)
    now = utcnow()
    for i in range(3):
        assert outbox.claim(wsession, event.id, 10, now + timedelta(seconds=11 * i)) is not None
    assert outbox.abandon_exhausted(wsession, now + timedelta(seconds=40), max_attempts=3) == 1
    assert event.status is OutboxStatus.failed and "never finished" in (event.last_error or "")


def test_sweep_skips_fresh_held_and_recently_published_rows(wsession: Any) -> None:
    settings = relay.Settings(grace_s=10, republish_s=60, lease_s=30)
    fresh = _event(wsession, "fresh")
    now = utcnow()
    assert relay.sweep(wsession, settings, now) == []  # just relayed after its commit
    later = now + timedelta(seconds=11)
    assert relay.sweep(wsession, settings, later) == [(fresh.id, "deliver.email")]
    relay.mark_published(wsession, [fresh.id], later)
    wsession.commit()
    assert relay.sweep(wsession, settings, later + timedelta(seconds=5)) == []
    assert relay.sweep(wsession, settings, later + timedelta(seconds=61)) == [(fresh.id, "deliver.email")]
    outbox.claim(wsession, fresh.id, 30, later + timedelta(seconds=62))
    assert relay.sweep(wsession, settings, later + timedelta(seconds=70)) == []  # held
    assert relay.sweep(wsession, settings, later + timedelta(seconds=93)) == [(fresh.id, "deliver.email")]


def test_failed_rows_can_be_queued_again(wsession: Any) -> None:
    event = _event(wsession)
    outbox.give_up(event, "no")
    wsession.commit()
    assert outbox.counts(wsession)["failed"] == 1
    assert outbox.retry(wsession) == 1
    assert event.status is OutboxStatus.pending and event.attempts == 0


def test_task_routing() -> None:
    assert relay.task_for("listing.changed") == relay.MATCH_LISTING
    assert relay.task_for("deliver.webhook") == relay.DELIVER
    assert relay.task_for("match.decision") == relay.NOTIFY
    assert relay.task_for("whatever") == relay.HANDLE
