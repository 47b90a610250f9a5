"""Which task handles which outbox event, the settings of the outbox, and the sweep.

The broker is a doorbell, the database is the record: every message names one outbox row (task
id = row id); whatever the broker loses, the sweep publishes again once it is due.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..models import OutboxEvent, utcnow
from . import outbox


class RetryLater(Exception):
    """A transient failure: the row is tried again after a backoff."""


class GiveUp(Exception):
    """A failure no retry can cure: the row ends failed at once, with the reason."""


MATCH_LISTING = "matchmaking.match_listing"
NOTIFY = "matchmaking.notify"
DELIVER = "matchmaking.deliver"
HANDLE = "matchmaking.handle_event"
IMPORT_LISTINGS = "matchmaking.import_listings"

TASKS = {
    "listing.changed": MATCH_LISTING,
    "match.decision": NOTIFY,
    "match.introduced": NOTIFY,
    "exchange.recorded": NOTIFY,
    "import.run": IMPORT_LISTINGS,
}


def task_for(kind: str) -> str:
    if kind.startswith("deliver."):
        return DELIVER
    return TASKS.get(kind, HANDLE)


@dataclass(frozen=True)
class Settings:
    lease_s: float = 360.0
    grace_s: float = 10.0
    republish_s: float = 600.0
    retry_base_s: float = outbox.BASE_DELAY_S
    retry_max_s: float = outbox.MAX_DELAY_S
    max_attempts: int = outbox.MAX_ATTEMPTS

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        return cls(
            lease_s=float(config["OUTBOX_LEASE_SECONDS"]),
            grace_s=float(config["OUTBOX_SWEEP_GRACE_SECONDS"]),
            republish_s=float(config["OUTBOX_REPUBLISH_SECONDS"]),
            retry_base_s=float(config["OUTBOX_RETRY_BASE_SECONDS"]),
            retry_max_s=float(config["OUTBOX_RETRY_MAX_SECONDS"]),
            max_attempts=int(config["OUTBOX_MAX_ATTEMPTS"]),
        )


Handler = Callable[[Session, OutboxEvent], "str | None"]


def handler_for(kind: str) -> Handler | None:
    """The service that carries out one event; it flushes and returns an optional note."""
    from . import delivery, import_jobs, notifications

    if kind == "listing.changed":
        return notifications.on_listing_changed
    if kind == "match.decision":
        return notifications.on_decision
    if kind == "match.introduced":
        return notifications.on_introduced
    if kind == "exchange.recorded":
        return notifications.on_exchange_recorded
    if kind.startswith("deliver."):
        return delivery.deliver
    if kind == import_jobs.EVENT:
        return import_jobs.run
    return None


def fail(event: OutboxEvent, exc: BaseException, settings: Settings, now: datetime | None = None) -> str:
    """Record a failed attempt of a claimed row; returns "failed" or "retry"."""
    if isinstance(exc, GiveUp):
        outbox.give_up(event, str(exc))
    else:
        outbox.record_failure(event, f"{type(exc).__name__}: {exc}", now, counted=True,
                              base_s=settings.retry_base_s, max_s=settings.retry_max_s,
                              max_attempts=settings.max_attempts)
    return event.status.value if event.status.value == "failed" else "retry"


def sweep(session: Session, settings: Settings, now: datetime | None = None) -> list[tuple[int, str]]:
    """Give up on rows whose last attempt died, and list the rows to publish again."""
    now = now or utcnow()
    outbox.abandon_exhausted(session, now, settings.max_attempts)
    session.flush()
    rows = outbox.to_publish(session, now, grace_s=settings.grace_s, republish_s=settings.republish_s)
    return [(row.id, row.kind) for row in rows]


def mark_published(session: Session, ids: list[int], now: datetime | None = None) -> None:
    if ids:
        session.execute(
            update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(published_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )
