"""The transactional outbox: events written in the same transaction as the change they report.

The request never talks to the broker; a relay publishes pending rows after commit, and a sweep
re-publishes whatever is still pending, so a broker outage delays work but never loses it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from ..models import OutboxEvent, OutboxStatus, utcnow

MAX_ATTEMPTS = 8
BASE_DELAY_S = 30.0
MAX_DELAY_S = 3600.0


def emit(session: Session, kind: str, payload: dict[str, Any], key: str, *, new: bool = False) -> OutboxEvent:
    """Record an event once: a second emit with the same key returns the existing row.

    `new`: the key names a row written in this transaction (a listing just created), so no event
    can have it yet; the event is added without a look-up and written with the next flush.
    """
    if not new:
        existing = session.scalar(select(OutboxEvent).where(OutboxEvent.idempotency_key == key))
        if existing is not None:
            return existing
    event = OutboxEvent(kind=kind, payload=payload, idempotency_key=key, status=OutboxStatus.pending)
    session.add(event)
    if not new:
        session.flush()
    return event


def backoff(attempts: int, base_s: float = BASE_DELAY_S, max_s: float = MAX_DELAY_S) -> timedelta:
    """Exponential backoff: 30 s, 1 min, 2 min … capped at one hour."""
    return timedelta(seconds=min(base_s * 2 ** max(attempts - 1, 0), max_s))


def record_failure(
    event: OutboxEvent,
    error: str,
    now: datetime | None = None,
    *,
    counted: bool = False,
    base_s: float = BASE_DELAY_S,
    max_s: float = MAX_DELAY_S,
    max_attempts: int = MAX_ATTEMPTS,
) -> None:
    """Count the attempt (unless claim() already did); schedule the next one, or give up
    visibly after `max_attempts`."""
    now = now or utcnow()
    if not counted:
        event.attempts += 1
    event.last_error = error[:2000]
    event.locked_until = None
    event.published_at = None
    if event.attempts >= max_attempts:
        event.status = OutboxStatus.failed
    else:
        event.next_attempt_at = now + backoff(event.attempts, base_s, max_s)


def record_success(event: OutboxEvent, *, counted: bool = False, note: str | None = None) -> None:
    if not counted:
        event.attempts += 1
    event.status = OutboxStatus.done
    event.locked_until = None
    event.last_error = note


def give_up(event: OutboxEvent, error: str) -> None:
    """A failure that no retry can cure (unknown kind, address refused, recipient rejected)."""
    event.status = OutboxStatus.failed
    event.locked_until = None
    event.last_error = error[:2000]


def due(session: Session, now: datetime | None = None, limit: int = 500) -> list[OutboxEvent]:
    """Pending events whose next attempt time has come, oldest first."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.status == OutboxStatus.pending, OutboxEvent.next_attempt_at <= now)
            .order_by(OutboxEvent.id)
            .limit(limit)
        )
    )


def claim(session: Session, event_id: int, lease_s: float, now: datetime | None = None) -> OutboxEvent | None:
    """Take the row for one attempt: counted now, so a row whose worker keeps dying still ends failed.

    One atomic UPDATE, so of two workers handed the same row only one gets it. The caller commits
    the claim before doing the work. None when the row is done, failed, not yet due or held.
    """
    now = now or utcnow()
    result = session.execute(
        update(OutboxEvent)
        .where(
            OutboxEvent.id == event_id,
            OutboxEvent.status == OutboxStatus.pending,
            OutboxEvent.next_attempt_at <= now,
            or_(OutboxEvent.locked_until.is_(None), OutboxEvent.locked_until <= now),
        )
        .values(
            attempts=OutboxEvent.attempts + 1,
            locked_until=now + timedelta(seconds=lease_s),
            published_at=None,  # consumed: from now on only a lapsed lease brings it back
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    return session.get(OutboxEvent, event_id, populate_existing=True)


def to_publish(
    session: Session,
    now: datetime | None = None,
    *,
    grace_s: float = 10.0,
    republish_s: float = 600.0,
    limit: int = 5000,
) -> list[OutboxEvent]:
    """What the sweep should hand to the broker: due, not held by a worker, and neither just
    relayed after its commit (younger than `grace_s`) nor published by a sweep less than
    `republish_s` ago."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(OutboxEvent)
            .where(
                OutboxEvent.status == OutboxStatus.pending,
                OutboxEvent.next_attempt_at <= now,
                or_(OutboxEvent.locked_until.is_(None), OutboxEvent.locked_until <= now),
                or_(
                    OutboxEvent.published_at.is_(None),
                    OutboxEvent.published_at <= now - timedelta(seconds=republish_s),
                ),
                or_(OutboxEvent.attempts > 0, OutboxEvent.created_at <= now - timedelta(seconds=grace_s)),
            )
            .order_by(OutboxEvent.id)
            .limit(limit)
        )
    )


def abandon_exhausted(session: Session, now: datetime | None = None, max_attempts: int = MAX_ATTEMPTS) -> int:
    """Rows whose last allowed attempt never finished (the worker died): mark them failed."""
    now = now or utcnow()
    rows = session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.status == OutboxStatus.pending,
            OutboxEvent.attempts >= max_attempts,
            or_(OutboxEvent.locked_until.is_(None), OutboxEvent.locked_until <= now),
        )
    ).all()
    for row in rows:
        give_up(row, f"gave up after {row.attempts} attempts; the last one never finished"
                + (f" (before: {row.last_error})" if row.last_error else ""))
    return len(rows)


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status)).all()
    return {status.value: 0 for status in OutboxStatus} | {str(status): int(n) for status, n in rows}


def retry(session: Session, ids: list[int] | None = None, now: datetime | None = None) -> int:
    """Put failed rows (all, or these ids) back in the queue with a fresh count of attempts."""
    query = select(OutboxEvent).where(OutboxEvent.status == OutboxStatus.failed)
    if ids is not None:
        query = query.where(OutboxEvent.id.in_(ids))
    rows = session.scalars(query).all()
    for row in rows:
        row.status = OutboxStatus.pending
        row.attempts = 0
        row.next_attempt_at = now or utcnow()
        row.locked_until = row.published_at = None
    session.flush()
    return len(rows)
