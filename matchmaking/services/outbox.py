"""The transactional outbox: events written in the same transaction as the change they report.

The request never talks to the broker; a relay publishes pending rows after commit, and a sweep
re-publishes whatever is still pending, so a broker outage delays work but never loses it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import OutboxEvent, OutboxStatus, utcnow

MAX_ATTEMPTS = 8
BASE_DELAY_S = 30.0
MAX_DELAY_S = 3600.0


def emit(session: Session, kind: str, payload: dict[str, Any], key: str) -> OutboxEvent:
    """Record an event once: a second emit with the same key returns the existing row."""
    existing = session.scalar(select(OutboxEvent).where(OutboxEvent.idempotency_key == key))
    if existing is not None:
        return existing
    event = OutboxEvent(kind=kind, payload=payload, idempotency_key=key, status=OutboxStatus.pending)
    session.add(event)
    session.flush()
    return event


def backoff(attempts: int) -> timedelta:
    """Exponential backoff: 30 s, 1 min, 2 min … capped at one hour."""
    return timedelta(seconds=min(BASE_DELAY_S * 2 ** max(attempts - 1, 0), MAX_DELAY_S))


def record_failure(event: OutboxEvent, error: str, now: datetime | None = None) -> None:
    """Count the attempt; schedule the next one, or give up visibly after MAX_ATTEMPTS."""
    now = now or utcnow()
    event.attempts += 1
    event.last_error = error[:2000]
    if event.attempts >= MAX_ATTEMPTS:
        event.status = OutboxStatus.failed
    else:
        event.next_attempt_at = now + backoff(event.attempts)


def record_success(event: OutboxEvent) -> None:
    event.attempts += 1
    event.status = OutboxStatus.done
    event.last_error = None


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
