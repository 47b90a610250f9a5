"""The CCMA facilitators' work: a queue of promising matches nobody has acted on, introductions,
notes, follow-up of each pair, listings kept on a small firm's behalf, and reminders for listings
nobody has confirmed for a long time.

Facilitators and administrators see both listings in full (they put firms in touch); every such
look, and every change made for a firm, is written to the audit log. Functions flush; the caller
commits. Introductions and reminders are outbox events, delivered by the workers after commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, object_session, selectinload

from ..models import (
    AuditLog,
    FacilitationNote,
    Firm,
    FollowUp,
    Listing,
    ListingStatus,
    Match,
    MatchStatus,
    Notification,
    Role,
    Site,
    User,
    utcnow,
)
from . import listings as listing_service
from . import outbox, queries, visibility
from . import validation as v
from .errors import Conflict, NotFound

FACILITATORS = frozenset({Role.facilitator, Role.admin})
MESSAGE_MAX = 2000
NOTE_MAX = 5000
REASON_MAX = 300
# A listing nobody has confirmed for this long may describe a by-product that no longer exists.
REMIND_AFTER = timedelta(days=90)
# A firm that did not react to a reminder hears again, not every day.
REMIND_AGAIN_AFTER = timedelta(days=30)
INTRODUCED = "match.introduced"
REMINDER = "listing.reminder"

FOLLOW_UP_ORDER = [FollowUp.proposed, FollowUp.contacted, FollowUp.trial, FollowUp.exchanged, FollowUp.recurring]
FOLLOW_UP_LABELS = {
    FollowUp.proposed: _l("proposed"),
    FollowUp.contacted: _l("contacted"),
    FollowUp.trial: _l("trial"),
    FollowUp.exchanged: _l("exchanged"),
    FollowUp.recurring: _l("recurring"),
    FollowUp.dropped: _l("dropped"),
}


def _require_facilitator(user: User) -> None:
    if user.role not in FACILITATORS:
        raise NotFound("facilitation")


def _audit(session: Session, actor: User, action: str, target_type: str, target_id: int,
           details: dict[str, Any]) -> None:
    session.add(AuditLog(actor_id=actor.id, action=action, target_type=target_type, target_id=target_id,
                         details=details))


# --- the queue -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    match: Match
    age_days: int


def _untouched() -> Any:
    """Matches no facilitator has acted on and no firm has declined or closed."""
    return (
        (Match.follow_up == FollowUp.proposed)
        & Match.introduced_at.is_(None)
        & Match.facilitator_id.is_(None)
        & Match.status.in_([MatchStatus.proposed, MatchStatus.interested])
        & ~select(FacilitationNote.id).where(FacilitationNote.match_id == Match.id).exists()
    )


def queue(session: Session, now: datetime | None = None, *, min_score: float | None = None,
          limit: int = 100, offset: int = 0) -> tuple[list[QueueItem], int]:
    """Shown matches nobody has acted on (at least ``min_score``, by default the threshold above
    which firms see them): best score first, then the oldest (waiting longest).

    Both listings must still be published; a firm that already showed interest stays in the queue,
    since a nudge from the CCMA is what such half-started pairs need most.
    """
    now = now or utcnow()
    min_score = queries.shown_threshold() if min_score is None else min_score
    offer, need = Listing.__table__.alias("offer_l"), Listing.__table__.alias("need_l")
    base = (
        select(Match)
        .join(offer, offer.c.id == Match.offer_id)
        .join(need, need.c.id == Match.need_id)
        .where(
            _untouched(),
            Match.score >= min_score,
            offer.c.status == ListingStatus.published.value,
            need.c.status == ListingStatus.published.value,
        )
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    matches = session.scalars(
        base.options(*_match_loads()).order_by(Match.score.desc(), Match.created_at, Match.id)
        .limit(limit).offset(offset)
    ).all()
    return [QueueItem(m, max((now - m.created_at).days, 0)) for m in matches], total


def _match_loads() -> list[Any]:
    return [
        selectinload(Match.offer).selectinload(Listing.firm),
        selectinload(Match.offer).selectinload(Listing.site).selectinload(Site.commune),
        selectinload(Match.offer).selectinload(Listing.family),
        selectinload(Match.need).selectinload(Listing.firm),
        selectinload(Match.need).selectinload(Listing.site).selectinload(Site.commune),
        selectinload(Match.need).selectinload(Listing.family),
    ]


def pipeline(session: Session, *, follow_up: FollowUp | None = None, limit: int = 200) -> list[Match]:
    """Matches a facilitator is following (anything past "proposed", or touched), latest change first."""
    query = select(Match).options(*_match_loads())
    if follow_up is not None:
        query = query.where(Match.follow_up == follow_up)
    else:
        query = query.where(or_(Match.follow_up != FollowUp.proposed, Match.introduced_at.is_not(None),
                                Match.facilitator_id.is_not(None)))
    return list(session.scalars(query.order_by(Match.updated_at.desc(), Match.id.desc()).limit(limit)))


def follow_up_counts(session: Session) -> dict[FollowUp, int]:
    rows = session.execute(select(Match.follow_up, func.count()).group_by(Match.follow_up)).all()
    counts = {status: 0 for status in FollowUp}
    counts.update({FollowUp(status): n for status, n in rows})
    return counts


# --- one match -----------------------------------------------------------------------------------


def open_match(session: Session, viewer: User, match_id: int) -> Match:
    """The match with both listings in full; the look is written to the audit log."""
    _require_facilitator(viewer)
    match = session.scalar(select(Match).where(Match.id == match_id).options(*_match_loads()))
    if match is None:
        raise NotFound(f"match {match_id}")
    _audit(session, viewer, "match.viewed", "match", match.id,
           {"offer_id": match.offer_id, "need_id": match.need_id,
            "firm_ids": sorted({match.offer.firm_id, match.need.firm_id})})
    session.flush()
    return match


def notes(session: Session, match: Match) -> list[FacilitationNote]:
    return list(session.scalars(
        select(FacilitationNote).where(FacilitationNote.match_id == match.id)
        .order_by(FacilitationNote.created_at.desc(), FacilitationNote.id.desc())
    ))


def add_note(session: Session, match: Match, author: User, text: object) -> FacilitationNote:
    _require_facilitator(author)
    errors = v.Collector()
    clean = errors.check("text", v.text, text, max_length=NOTE_MAX, required=True)
    errors.raise_if_any()
    note = FacilitationNote(match_id=match.id, author_id=author.id, text=clean)
    session.add(note)
    match.updated_at = utcnow()
    session.flush()
    return note


def set_follow_up(session: Session, match: Match, actor: User, status: object,
                  reason: object = None) -> Match:
    """Move the pair along proposed → contacted → trial → exchanged → recurring, or drop it with a
    reason. Going back is allowed (a trial can fail and the firms talk again); reopening a dropped
    pair clears its reason. Every move is audited."""
    _require_facilitator(actor)
    errors = v.Collector()
    new = errors.check("follow_up", v.choice, status, {s.value: s.value for s in FollowUp},
                       _l("Unknown follow-up status."))
    clean_reason = errors.check("reason", v.text, reason, max_length=REASON_MAX)
    if new == FollowUp.dropped.value and not clean_reason:
        errors.add("reason", _l("Say why the pair is dropped."))
    errors.raise_if_any()
    target = FollowUp(new)
    before = match.follow_up
    if target is before and (target is not FollowUp.dropped or clean_reason == match.drop_reason):
        return match
    match.follow_up = target
    match.drop_reason = clean_reason if target is FollowUp.dropped else None
    if match.facilitator_id is None:
        match.facilitator_id = actor.id
    match.updated_at = utcnow()
    _audit(session, actor, "match.follow_up", "match", match.id,
           {"from": before.value, "to": target.value, "reason": match.drop_reason})
    session.flush()
    return match


def _members(session: Session, firm_id: int) -> list[User]:
    return list(session.scalars(
        select(User).where(User.firm_id == firm_id, User.active.is_(True)).order_by(User.id)
    ))


def _session_of(match: Match) -> Session:
    session = object_session(match)
    assert session is not None, "a match being introduced belongs to a session"
    return session


def _introduction_payload(match: Match, user: User, facilitator: User, message: str) -> dict[str, Any]:
    """What each firm is told: its own listing, the other listing, and the other firm's name only
    when that listing is not anonymous or the match is accepted (a facilitator's introduction does
    not lift anonymity on the firm's behalf; the message says what the firms agreed to share)."""
    own, other = (match.offer, match.need) if match.offer.firm_id == user.firm_id else (match.need, match.offer)
    reveal = not other.anonymous or match.status is MatchStatus.accepted
    return {
        "match_id": match.id,
        "message": message,
        "facilitator_name": facilitator.name or facilitator.email,
        "facilitator_email": facilitator.email,
        "listing_id": own.id,
        "listing_title": own.title,
        "other_listing_id": other.id,
        "other_title": other.title,
        "other_firm_name": other.firm.name if reveal else None,
        "other_commune": visibility.audience(_session_of(match), user).view(other).place.commune,
        "score": round(match.score, 3),
    }


def introduce(session: Session, match: Match, facilitator: User, message: object) -> list[Notification]:
    """Introduce the two firms: an in-app notification to every active member of both, an outbox
    event `match.introduced` (the workers send the e-mails and webhooks), the pair marked contacted."""
    _require_facilitator(facilitator)
    errors = v.Collector()
    clean = errors.check("message", v.text, message, max_length=MESSAGE_MAX, required=True)
    errors.raise_if_any()
    if match.introduced_at is not None:
        raise Conflict(_l("These firms have already been introduced; add a note instead."))
    if match.status in (MatchStatus.declined, MatchStatus.stale):
        raise Conflict(_l("This match is no longer open."))
    now = utcnow()
    match.introduced_at = now
    match.facilitator_id = match.facilitator_id or facilitator.id
    if match.follow_up is FollowUp.proposed:
        match.follow_up = FollowUp.contacted
    match.updated_at = now
    made: list[Notification] = []
    key = f"{INTRODUCED}:{match.id}"
    for firm_id in dict.fromkeys([match.offer.firm_id, match.need.firm_id]):
        for member in _members(session, firm_id):
            notification = Notification(user=member, kind=INTRODUCED, dedup_key=key, match_id=match.id,
                                        payload=_introduction_payload(match, member, facilitator, clean))
            session.add(notification)
            made.append(notification)
    session.flush()
    outbox.emit(session, INTRODUCED, {
        "match_id": match.id,
        "facilitator_id": facilitator.id,
        "message": clean,
        "notification_ids": [n.id for n in made],
    }, key)
    _audit(session, facilitator, INTRODUCED, "match", match.id,
           {"notifications": len(made), "firm_ids": sorted({match.offer.firm_id, match.need.firm_id})})
    session.flush()
    return made


# --- listings kept for a firm ----------------------------------------------------------------------


def firms(session: Session, query: str = "", limit: int = 50) -> list[Firm]:
    """Firms by name or SIRET, for picking the one to help."""
    stmt = select(Firm).options(selectinload(Firm.sites).selectinload(Site.commune)).order_by(Firm.name)
    text = query.strip()
    if text:
        pattern = f"%{text.lower()}%"
        stmt = stmt.where(or_(func.lower(Firm.name).like(pattern), Firm.siret.like(f"%{text}%")))
    return list(session.scalars(stmt.limit(limit)))


def firm(session: Session, firm_id: int) -> Firm:
    found = session.get(Firm, firm_id)
    if found is None:
        raise NotFound(f"firm {firm_id}")
    return found


def firm_listings(session: Session, firm_obj: Firm) -> list[Listing]:
    return list(session.scalars(
        select(Listing).where(Listing.firm_id == firm_obj.id)
        .options(selectinload(Listing.family), selectinload(Listing.site).selectinload(Site.commune))
        .order_by(Listing.status, Listing.kind, Listing.title)
    ))


def create_listing_for(session: Session, actor: User, firm_obj: Firm, data: Mapping[str, Any], *,
                       publish: bool = True) -> Listing:
    """A listing written by a facilitator for a firm (over the phone, at a visit), audited."""
    _require_facilitator(actor)
    listing = listing_service.create_listing(session, firm_obj, data, publish=publish)
    _audit(session, actor, "listing.created_on_behalf", "listing", listing.id,
           {"firm_id": firm_obj.id, "kind": listing.kind.value, "title": listing.title})
    session.flush()
    return listing


def update_listing_for(session: Session, actor: User, listing: Listing, data: Mapping[str, Any]) -> Listing:
    """A firm's listing changed by a facilitator; the audit log keeps which fields, old and new."""
    _require_facilitator(actor)
    watched = ("title", "description", "low_code", "material_family", "quantity", "unit", "frequency",
               "radius_km", "available_from", "available_until", "anonymous", "price_eur_per_unit")
    before = {field: getattr(listing, field) for field in watched}
    listing_service.update_listing(session, listing, data)
    changes = {
        field: [_plain(before[field]), _plain(getattr(listing, field))]
        for field in watched if before[field] != getattr(listing, field)
    }
    _audit(session, actor, "listing.updated_on_behalf", "listing", listing.id,
           {"firm_id": listing.firm_id, "changes": changes})
    session.flush()
    return listing


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    return value


# --- reminders -------------------------------------------------------------------------------------


def last_confirmed(listing: Listing) -> datetime:
    return listing.confirmed_at or listing.published_at or listing.created_at


def _is_due(listing: Listing, now: datetime) -> bool:
    confirmed = last_confirmed(listing)
    if confirmed > now - REMIND_AFTER:
        return False
    reminded = listing.reminded_at
    return reminded is None or reminded < confirmed or reminded <= now - REMIND_AGAIN_AFTER


def listings_due_for_reminder(session: Session, now: datetime) -> list[Listing]:
    """Published listings not confirmed for 90 days and not reminded since (or for 30 days)."""
    cutoff = now - REMIND_AFTER
    candidates = session.scalars(
        select(Listing)
        .where(
            Listing.status == ListingStatus.published,
            or_(Listing.confirmed_at.is_(None), Listing.confirmed_at <= cutoff),
        )
        .order_by(Listing.id)
    ).all()
    return [listing for listing in candidates if _is_due(listing, now)]


def send_reminders(session: Session, now: datetime) -> list[Listing]:
    """Emit one `listing.reminder` event per due listing (the workers tell the firm's members) and
    note when. Running it twice the same day emits nothing new."""
    due = listings_due_for_reminder(session, now)
    for listing in due:
        confirmed = last_confirmed(listing)
        outbox.emit(session, REMINDER, {
            "listing_id": listing.id,
            "firm_id": listing.firm_id,
            "title": listing.title,
            "kind": listing.kind.value,
            "last_confirmed_at": confirmed.isoformat(),
            "user_ids": [u.id for u in _members(session, listing.firm_id)],
        }, f"{REMINDER}:{listing.id}:{now.date().isoformat()}")
    if due:
        # Not a change of the listing itself: keep updated_at (it keys the rematch events).
        session.execute(
            update(Listing).where(Listing.id.in_([listing.id for listing in due]))
            .values(reminded_at=now, updated_at=Listing.updated_at)
            .execution_options(synchronize_session=False)
        )
        for listing in due:
            session.expire(listing, ["reminded_at", "updated_at"])
    session.flush()
    return due

