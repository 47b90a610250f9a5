"""Who is told what: in-app notifications for matches and decisions, and the deliveries they owe.

Each Notification is unique per (user, dedup_key), so handling an event twice tells nobody twice.
The in-app list keeps one notice per match; deliveries are grouped: whatever one event (a listing
published, a decision, an introduction, a slice of the weekly rematch) tells a user goes out as one
e-mail, and what it tells a firm as one webhook call per endpoint. Each delivery is an outbox row
keyed on the event and the recipient (`email:<trigger>:<user id>`, `webhook:<trigger>:<endpoint
id>`), written in the same transaction as the notices it carries, so a retry or a second run finds
the row and sends nothing more, and a crash leaves either both or neither.
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
from . import outbox, queries, verification, visibility

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
    made = [n for match, worth in results if worth for n in tell_match(session, match)]
    queued = queue_deliveries(session, made, trigger_of(event))
    return f"{len(results)} match(es), {len(made)} notification(s), {queued} delivery(ies)"


def rematch(session: Session, listing_ids: Iterable[int]) -> tuple[int, int]:
    """Match these listings again (a slice of a full rematch); tell firms of the pairs they have
    not heard of. Returns (listings, notifications)."""
    done = 0
    made: list[Notification] = []
    for listing_id in listing_ids:
        if session.get(Listing, listing_id) is None:
            continue
        results = refresh_matches(session, listing_id)
        made += [n for match, worth in results if worth for n in tell_match(session, match)]
        done += 1
    # One delivery per recipient for the whole slice, keyed on its first notice (no event here).
    queue_deliveries(session, made, None)
    return done, len(made)


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
    queue_deliveries(session, made, trigger_of(event))
    return f"{len(made)} notification(s)"


def on_introduced(session: Session, event: OutboxEvent) -> str:
    """A facilitator introduced two firms (the notices are written with the event): deliver them."""
    ids = [int(i) for i in event.payload.get("notification_ids", [])]
    made = list(session.scalars(select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id)))
    queued = queue_deliveries(session, made, trigger_of(event))
    return f"{len(made)} notification(s), {queued} delivery(ies)"


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


def match_payload(session: Session, match: Match, user: User) -> dict[str, Any]:
    """What the notice says, from the recipient's side; the other firm is never named (it may be
    anonymous until both accept), its place and distance are given as the recipient may know them
    (services/visibility.py: a commune, or a wider area when the commune has few firms)."""
    own, other = (match.offer, match.need) if match.offer.firm_id == user.firm_id else (match.need, match.offer)
    seen = visibility.audience(session, user)
    return {
        "match_id": match.public_id,
        "score": round(match.score, 3),
        "distance_km": seen.distance_between(own, other),
        "listing_id": own.public_id,
        "listing_title": own.title,
        "listing_kind": own.kind.value,
        "other_listing_id": other.public_id,
        "other_title": other.title,
        "other_kind": other.kind.value,
        "other_commune": seen.view(other).place.commune,
    }


def _exists(session: Session, user: User, key: str) -> bool:
    found = session.scalar(
        select(Notification.id).where(Notification.user_id == user.id, Notification.dedup_key == key)
    )
    return found is not None


def _notify(session: Session, user: User, match: Match, kind: str, key: str) -> Notification | None:
    """One in-app notification; None if already told. Its deliveries are queued by the caller."""
    if _exists(session, user, key):
        return None
    notification = Notification(user=user, kind=kind, dedup_key=key, match_id=match.id,
                                payload=match_payload(session, match, user))
    session.add(notification)
    session.flush()
    return notification


def tell_match(session: Session, match: Match) -> list[Notification]:
    """The in-app notices of a new (or much improved) match for the members of both firms who want
    it (rhythm not off, score at least their minimum), once each; nothing is delivered yet. A match
    under the shown threshold is told to nobody."""
    if not queries.is_shown(match.score):
        return []
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
    return made


def notify_match(session: Session, match: Match) -> list[Notification]:
    """Tell both firms about one match, with its deliveries (an event of its own)."""
    made = tell_match(session, match)
    queue_deliveries(session, made, None)
    return made


# --- grouped deliveries --------------------------------------------------------------------------


def trigger_of(event: OutboxEvent) -> str:
    return f"ev{event.id}"


def _free_key(session: Session, key: str, notes: list[Notification]) -> str:
    """The delivery key of these notices: the trigger's and recipient's, unless that delivery
    carries other notices (a second run that found more to tell), then one of the notices' own,
    so that they are neither swallowed by the first delivery nor queued twice."""
    existing = session.scalar(select(OutboxEvent).where(OutboxEvent.idempotency_key == key))
    if existing is None or notes[0].id in existing.payload.get("notification_ids", []):
        return key
    return f"{key}:n{notes[0].id}"


def queue_deliveries(session: Session, made: list[Notification], trigger: str | None) -> int:
    """Queue what these notices (from one triggering event) owe: one e-mail per instant user with
    e-mails on, one webhook call per active endpoint of each firm with a member who wants
    webhooks. Returns the number of outbox rows written."""
    if not made:
        return 0
    trigger = trigger or f"n{min(n.id for n in made)}"
    by_user: dict[int, list[Notification]] = {}
    for notification in made:
        by_user.setdefault(notification.user_id, []).append(notification)
    queued = 0
    now = utcnow()
    for notes in by_user.values():
        user = notes[0].user
        if user.notify_mode is not NotifyMode.instant or not user.notify_email or not verification.is_confirmed(user):
            continue  # an unconfirmed address gets no e-mail: the notices wait in the app
        ids = [n.id for n in notes]
        key = _free_key(session, f"email:{trigger}:{user.id}", notes)
        outbox.emit(session, "deliver.email", {"user_id": user.id, "notification_ids": ids, "trigger": trigger},
                    key)
        for notification in notes:
            notification.digested_at = now  # e-mailed now: owes nothing to a later digest
        queued += 1
    by_firm: dict[int, list[Notification]] = {}
    for notification in made:
        user = notification.user
        if user.firm_id is not None and user.notify_webhook:
            by_firm.setdefault(user.firm_id, []).append(notification)
    for firm_id, notes in by_firm.items():
        unique: dict[tuple[int | None, str], Notification] = {}
        for notification in notes:  # members told of the same match: the firm hears of it once
            unique.setdefault((notification.match_id, notification.kind), notification)
        ids = [n.id for n in unique.values()]
        endpoints = session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.firm_id == firm_id, WebhookEndpoint.active.is_(True))
            .order_by(WebhookEndpoint.id)
        )
        for endpoint in endpoints:
            key = _free_key(session, f"webhook:{trigger}:{endpoint.id}", list(unique.values()))
            outbox.emit(session, "deliver.webhook",
                        {"endpoint_id": endpoint.id, "firm_id": firm_id, "notification_ids": ids, "trigger": trigger},
                        key)
            queued += 1
    session.flush()
    return queued


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
        if not verification.is_confirmed(user):
            continue
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
