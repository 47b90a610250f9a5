"""Thin, idempotent tasks: ids in, one service call, commit, log.

Outbox tasks take the row id (also the Celery task id). A row is claimed for one attempt before
the work, so a redelivered or re-published message finds it done or held and does nothing;
retries are scheduled in the database and published by the sweep, never as long countdowns.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import group, shared_task
from flask import current_app

from matchmaking.celery import cleanup_embedded_broker, publish
from matchmaking.extensions import db, db_session
from matchmaking.models import NotifyMode, OutboxEvent
from matchmaking.services import expiry, notifications, outbox, relay

log = logging.getLogger(__name__)


def _settings() -> relay.Settings:
    return relay.Settings.from_config(current_app.config)


def run_event(event_id: int) -> str:
    """Claim one outbox row, carry it out, record the outcome: done, retry, failed or skipped."""
    settings = _settings()
    session = db_session()
    event = outbox.claim(session, event_id, settings.lease_s)
    session.commit()
    if event is None:
        log.info("outbox %s: skipped (done, failed, held by another worker or not due)", event_id)
        return "skipped"
    kind, attempt = event.kind, event.attempts
    try:
        handler = relay.handler_for(kind)
        if handler is None:
            raise relay.GiveUp(f"no handler for outbox events of kind {kind!r}")
        note = handler(session, event)
        outbox.record_success(event, counted=True, note=None)
        session.commit()
        log.info("outbox %s %s: done (attempt %s) %s", event_id, kind, attempt, note or "")
        return "done"
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row
        session.rollback()
        row = session.get(OutboxEvent, event_id)
        if row is None:
            return "skipped"
        outcome = relay.fail(row, exc, settings)
        session.commit()
        log.warning("outbox %s %s: %s after attempt %s: %s", event_id, kind, outcome, attempt, exc)
        return outcome


# Celery ships no type hints: its task decorator is untyped, hence the ignores below.
@shared_task(name=relay.MATCH_LISTING)  # type: ignore[untyped-decorator]
def match_listing(event_id: int) -> str:
    """A listing was published or changed: match it, notify the firms of new matches."""
    return run_event(event_id)


@shared_task(name=relay.NOTIFY)  # type: ignore[untyped-decorator]
def notify(event_id: int) -> str:
    """A decision was taken on a match (or an exchange recorded): notify who should know."""
    return run_event(event_id)


@shared_task(name=relay.DELIVER)  # type: ignore[untyped-decorator]
def deliver(event_id: int) -> str:
    """Deliver one notification by e-mail or webhook (or one digest)."""
    return run_event(event_id)


@shared_task(name=relay.IMPORT_LISTINGS)  # type: ignore[untyped-decorator]
def import_listings(event_id: int) -> str:
    """A firm sent a large file: import it (or nothing) and keep the report for its page."""
    return run_event(event_id)


@shared_task(name=relay.HANDLE)  # type: ignore[untyped-decorator]
def handle_event(event_id: int) -> str:
    return run_event(event_id)


@shared_task(name="matchmaking.sweep_outbox", ignore_result=True)  # type: ignore[untyped-decorator]
def sweep_outbox() -> int:
    """Publish again what is due and not done (lost messages, scheduled retries, broker outages)."""
    session = db_session()
    rows = relay.sweep(session, _settings())
    session.commit()
    if not rows:
        return 0
    sent = publish(current_app.extensions["celery"], rows)
    relay.mark_published(session, [event_id for event_id, _ in rows[:sent]])
    session.commit()
    log.info("sweep: %s of %s outbox row(s) published", sent, len(rows))
    return sent


def _digest(mode: NotifyMode) -> int:
    session = db_session()
    queued = notifications.queue_digests(session, mode)
    session.commit()
    log.info("%s digests queued: %s", mode.value, queued)
    return queued


@shared_task(name="matchmaking.daily_digest")  # type: ignore[untyped-decorator]
def daily_digest() -> int:
    return _digest(NotifyMode.daily)


@shared_task(name="matchmaking.weekly_digest")  # type: ignore[untyped-decorator]
def weekly_digest() -> int:
    return _digest(NotifyMode.weekly)


@shared_task(name="matchmaking.expire_listings")  # type: ignore[untyped-decorator]
def expire_listings() -> int:
    session = db_session()
    ids = expiry.expire_listings(session)
    session.commit()
    log.info("expired listings: %s", ids)
    return len(ids)


@shared_task(name="matchmaking.cleanup_broker", ignore_result=True)  # type: ignore[untyped-decorator]
def cleanup_broker() -> int:
    """The embedded broker's consumed messages deleted, its file compacted when mostly empty."""
    done = cleanup_embedded_broker(str(current_app.extensions["celery"].conf.broker_url))
    log.info("broker cleanup: %s consumed message(s) deleted, vacuumed: %s", done["deleted"], done["vacuumed"])
    return done["deleted"]


@shared_task(name="matchmaking.rematch_all")  # type: ignore[untyped-decorator]
def rematch_all() -> int:
    """Split a full rematch into groups (one material family at a time) run in parallel."""
    groups = notifications.rematch_groups(db_session(), int(current_app.config["REMATCH_GROUP_SIZE"]))
    db.session.rollback()
    if groups:
        group(rematch_group.s(ids) for ids in groups).apply_async()
    log.info("full rematch: %s group(s)", len(groups))
    return len(groups)


@shared_task(name="matchmaking.rematch_group")  # type: ignore[untyped-decorator]
def rematch_group(listing_ids: list[int]) -> Any:
    session = db_session()
    done, told = notifications.rematch(session, listing_ids)
    session.commit()
    log.info("rematched %s listing(s), %s notification(s)", done, told)
    return done
