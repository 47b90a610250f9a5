"""Who is told what: in-app notifications for matches and decisions, and the deliveries they owe.

Each Notification is unique per (user, dedup_key), so handling an event twice tells nobody twice.
E-mail and webhook deliveries are outbox rows of their own (`email:<notification id>`,
`webhook:<notification id>:<endpoint id>`), written in the same transaction as the notification.
Users on a daily or weekly rhythm get their e-mails as a digest instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..models import (
    Listing,
    ListingStatus,
    Match,
    MatchStatus,
    Notification,
    NotifyMode,
    OutboxEvent,
    User,
    WebhookEndpoint,
    utcnow,
)
from . import outbox

MATCH_FOUND = "match.found"
MATCH_IMPROVED = "match.improved"
DIGEST_WINDOW = {NotifyMode.daily: timedelta(days=2), NotifyMode.weekly: timedelta(days=8)}


def refresh_matches(session: Session, listing_id: int) -> list[tuple[Match, bool]]:
    """The matching service's refresh (imported late: the engine loads only where it runs)."""
    module = importlib.import_module(__package__ + ".matching")
    return cast(list[tuple[Match, bool]], module.refresh_matches(session, listing_id))


# --- events --------------------------------------------------------------------------------------


def on_listing_changed(session: Session, event: OutboxEvent) -> str:
    """Match one listing, then tell both firms of every match worth telling."""
    listing_id = int(event.payload["listing_id"])
    if session.get(Listing, listing_id) is None:
        return "listing deleted"
    results = refresh_matches(session, listing_id)
    told = sum(len(notify_match(session, match)) for match, worth in results if worth)
    return f"{len(results)} match(es), {told} notification(s)"


def rematch(session: Session, listing_ids: Iterable[int]) -> tuple[int, int]:
    """Match these listings again (a slice of a full rematch); tell firms of the pairs they have
    not heard of. Returns (listings, notifications)."""
    done = told = 0
    for listing_id in listing_ids:
        if session.get(Listing, listing_id) is None:
            continue
        results = refresh_matches(session, listing_id)
        told += sum(len(notify_match(session, match)) for match, worth in results if worth)
        done += 1
    return done, told


def rematch_groups(session: Session, size: int) -> list[list[int]]:
    """The published listings split into groups of at most `size`, one material family at a time,
    so each group's listings share their candidates."""
    rows = session.execute(
        select(Listing.material_family, Listing.id).where(Listing.status == ListingStatus.published)
        .order_by(Listing.material_family, Listing.id)
    ).all()
    groups: list[list[int]] = []
    current_family: object = object()
    for family, listing_id in rows:
        if family != current_family or len(groups[-1]) >= size:
            groups.append([])
            current_family = family
        groups[-1].append(int(listing_id))
    return groups


def on_decision(session: Session, event: OutboxEvent) -> str:
    """A firm expressed interest, accepted or declined: tell the other firm (both once accepted)."""
    match = session.get(Match, int(event.payload["match_id"]))
    if match is None:
        return "match deleted"
    side = str(event.payload.get("side", ""))
    decision = str(event.payload.get("decision", ""))
    if match.status is MatchStatus.accepted:
        firm_ids = {match.offer.firm_id, match.need.firm_id}
        kind, key = "match.accepted", f"match.accepted:{match.id}"
    else:
        actor_firm = match.offer.firm_id if side == "offer" else match.need.firm_id
        firm_ids = {match.offer.firm_id, match.need.firm_id} - {actor_firm}
        # One side accepting is, for the other, the same news as interest: both must accept.
        kind = "match.declined" if decision == "declined" else "match.interested"
        key = f"match.decision:{match.id}:{side}:{decision}"
    users = recipients(session, firm_ids)
    made = [n for user in users if (n := _notify(session, user, match, kind, key)) is not None]
    _queue_webhooks(session, made)
    return f"{len(made)} notification(s)"


def on_exchange_recorded(session: Session, event: OutboxEvent) -> str:
    return "nothing to notify"


# --- notifications -------------------------------------------------------------------------------


def recipients(session: Session, firm_ids: Iterable[int], min_score: float | None = None) -> list[User]:
    """Active members of these firms who want notices (and, for a match, whose threshold it meets)."""
    query = select(User).where(
        User.firm_id.in_(list(firm_ids)), User.active.is_(True), User.notify_mode != NotifyMode.off
    )
    if min_score is not None:
        query = query.where(User.notify_min_score <= min_score + 1e-9)
    return list(session.scalars(query.order_by(User.id)))


def match_payload(match: Match, user: User) -> dict[str, Any]:
    """What the notice says, from the recipient's side; the other firm is never named (it may be
    anonymous until both accept), its place is given as a commune only."""
    own, other = (match.offer, match.need) if match.offer.firm_id == user.firm_id else (match.need, match.offer)
    return {
        "match_id": match.id,
        "score": round(match.score, 3),
        "distance_km": None if match.distance_km is None else round(match.distance_km, 1),
        "listing_id": own.id,
        "listing_title": own.title,
        "listing_kind": own.kind.value,
        "other_listing_id": other.id,
        "other_title": other.title,
        "other_kind": other.kind.value,
        "other_commune": other.site.commune.name if other.site and other.site.commune else None,
    }


def _exists(session: Session, user: User, key: str) -> bool:
    found = session.scalar(
        select(Notification.id).where(Notification.user_id == user.id, Notification.dedup_key == key)
    )
    return found is not None


def _notify(session: Session, user: User, match: Match, kind: str, key: str) -> Notification | None:
    """One in-app notification and, for instant e-mail users, its e-mail; None if already told."""
    if _exists(session, user, key):
        return None
    notification = Notification(user=user, kind=kind, dedup_key=key, match_id=match.id,
                                payload=match_payload(match, user))
    session.add(notification)
    session.flush()
    if user.notify_mode is NotifyMode.instant and user.notify_email:
        outbox.emit(session, "deliver.email", {"notification_id": notification.id}, f"email:{notification.id}")
        notification.digested_at = utcnow()  # e-mailed now: owes nothing to a later digest
    return notification


def notify_match(session: Session, match: Match) -> list[Notification]:
    """Tell the members of both firms about a new (or much improved) match, once each."""
    users = recipients(session, {match.offer.firm_id, match.need.firm_id}, min_score=match.score)
    made: list[Notification] = []
    for user in users:
        key = f"{MATCH_FOUND}:{match.id}"
        kind = MATCH_FOUND
        if _exists(session, user, key):
            # Already told of this pair: a rise in score is news once per percentage point.
            kind, key = MATCH_IMPROVED, f"{MATCH_IMPROVED}:{match.id}:{int(match.score * 100)}"
        notification = _notify(session, user, match, kind, key)
        if notification is not None:
            made.append(notification)
    _queue_webhooks(session, made)
    return made


def _queue_webhooks(session: Session, made: list[Notification]) -> None:
    """One webhook per firm endpoint and event, carried by the first member who wants webhooks."""
    seen: set[int] = set()
    for notification in made:
        user = notification.user
        if user.firm_id is None or user.firm_id in seen or not user.notify_webhook:
            continue
        seen.add(user.firm_id)
        endpoints = session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.firm_id == user.firm_id, WebhookEndpoint.active.is_(True))
        )
        for endpoint in endpoints:
            outbox.emit(session, "deliver.webhook", {"notification_id": notification.id, "endpoint_id": endpoint.id},
                        f"webhook:{notification.id}:{endpoint.id}")


# --- digests -------------------------------------------------------------------------------------


def period_key(mode: NotifyMode, now: datetime) -> str:
    if mode is NotifyMode.weekly:
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}"
    return now.date().isoformat()


def queue_digests(session: Session, mode: NotifyMode, now: datetime | None = None) -> int:
    """One digest e-mail per daily (or weekly) user with news since the last one; idempotent per period."""
    now = now or utcnow()
    period = period_key(mode, now)
    queued = 0
    users = session.scalars(
        select(User).where(User.notify_mode == mode, User.notify_email.is_(True), User.active.is_(True))
    )
    for user in users:
        key = f"digest:{mode.value}:{user.id}:{period}"
        if session.scalar(select(OutboxEvent.id).where(OutboxEvent.idempotency_key == key)) is not None:
            continue  # this period's digest is out; what came since waits for the next one
        ids = list(session.scalars(
            select(Notification.id).where(
                Notification.user_id == user.id,
                Notification.digested_at.is_(None),
                Notification.created_at > now - DIGEST_WINDOW[mode],
                Notification.created_at <= now,
            ).order_by(Notification.id)
        ))
        if not ids:
            continue
        outbox.emit(session, "deliver.digest", {"user_id": user.id, "notification_ids": ids, "mode": mode.value}, key)
        session.execute(
            update(Notification).where(Notification.id.in_(ids)).values(digested_at=now)
            .execution_options(synchronize_session=False)
        )
        queued += 1
    session.flush()
    return queued


# --- the in-app list -----------------------------------------------------------------------------


def for_user(session: Session, user: User, *, unread_only: bool = False, limit: int = 50) -> list[Notification]:
    query = select(Notification).where(Notification.user_id == user.id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


def unread_count(session: Session, user: User) -> int:
    return int(session.scalar(
        select(func.count()).select_from(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
    ) or 0)


def mark_read(session: Session, user: User, ids: Iterable[int] | None = None) -> int:
    """Mark the user's notifications (all, or these ids) as read; others' are never touched."""
    query = update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    if ids is not None:
        query = query.where(Notification.id.in_(list(ids)))
    result = session.execute(query.values(read_at=utcnow()).execution_options(synchronize_session=False))
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)
