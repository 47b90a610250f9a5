"""The match workflow: each party expresses interest, accepts or declines, then records exchanges.

Each firm decides in its own column (`offer_decision` for the offer's firm, `need_decision` for the
need's firm); the match status follows:

    proposed ──interest/accept──▶ interested ──other side accepts too──▶ accepted (identities revealed)
        └───────────decline (either side, before both accepted)──────────▶ declined

Every change writes, in the caller's transaction, an AuditLog row and an outbox event
`match.decision` keyed `match.decision:<match_id>:<side>:<decision>`, so notifications follow
from the same commit. Repeating a decision already taken changes nothing and emits nothing, so a
retried request is harmless. Invalid transitions raise Conflict; a user who is not a party gets
NotFound. Functions flush; the caller commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Literal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import (
    AuditLog,
    Decision,
    Exchange,
    ListingStatus,
    Match,
    MatchStatus,
    Unit,
    User,
    utcnow,
)
from . import listings as listing_service
from . import outbox
from . import validation as v
from .errors import Conflict, NotFound

Side = Literal["offer", "need"]
# Why a firm declines, in one click; the reason is stored and the next model learns from it
# (``services.learning``): a wrong material or quality says the pair was wrong, the others that the
# material was right but the exchange was not practical.
DECLINE_REASONS = {
    "wrong_material": _l("Not the right material"),
    "too_far": _l("Too far"),
    "too_small": _l("Too small a quantity"),
    "quality": _l("Quality does not fit"),
    "other": _l("Another reason"),
}
OPEN_LISTING = frozenset({ListingStatus.published, ListingStatus.paused})
EARLIEST_EXCHANGE = date(2000, 1, 1)


def sides_of(match: Match, user: User | None) -> list[Side]:
    """The sides of the match that the user's firm holds (both when a firm trades with itself)."""
    if user is None or user.firm_id is None:
        return []
    sides: list[Side] = []
    if match.offer.firm_id == user.firm_id:
        sides.append("offer")
    if match.need.firm_id == user.firm_id:
        sides.append("need")
    return sides


def match_for(session: Session, user: User | None, public_id: str, *, lock: bool = False) -> Match:
    """A match the user's firm is a party to; NotFound otherwise. `lock` takes a row lock
    (PostgreSQL) so that two parties accepting at once cannot both miss the other's acceptance."""
    query = select(Match).where(Match.public_id == public_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    match = session.scalar(query)
    if match is None or not sides_of(match, user):
        raise NotFound(f"match {public_id}")
    return match


def _decision(match: Match, side: Side) -> Decision:
    return match.offer_decision if side == "offer" else match.need_decision


def _set_decision(match: Match, side: Side, decision: Decision) -> None:
    if side == "offer":
        match.offer_decision = decision
    else:
        match.need_decision = decision


def _record(session: Session, match: Match, user: User, side: Side, decision: Decision) -> None:
    payload = {
        "match_id": match.id,
        "side": side,
        "decision": decision.value,
        "reason": getattr(match, f"{side}_decline_reason") if decision is Decision.declined else None,
        "status": match.status.value,
        "user_id": user.id,
    }
    outbox.emit(session, "match.decision", payload, f"match.decision:{match.id}:{side}:{decision.value}")
    session.add(AuditLog(
        actor_id=user.id,
        action=f"match.{decision.value}",
        target_type="match",
        target_id=match.id,
        details={"side": side, "status": match.status.value},
    ))


def _require_open(match: Match) -> None:
    if match.status in (MatchStatus.declined, MatchStatus.stale):
        raise Conflict(_l("This match is no longer open."))
    if match.offer.status not in OPEN_LISTING or match.need.status not in OPEN_LISTING:
        raise Conflict(_l("One of the two listings is closed."))


def check_decline_reason(value: Any) -> str | None:
    """A decline's reason (one of ``DECLINE_REASONS``), or None; ValidationError on `reason`."""
    if value is None:
        return None
    errors = v.Collector()
    reason = errors.check("reason", v.choice, value, {k: k for k in DECLINE_REASONS},
                          _l("Unknown reason: use wrong_material, too_far, too_small, quality or other."))
    errors.raise_if_any()
    return str(reason)


def _snapshot(match: Match) -> None:
    """What the firms decide on stays as they saw it: a later rematch rewrites the score, not this."""
    if match.decided_score is None:
        match.decided_score = match.score
        match.decided_explanation = dict(match.explanation or {})
        match.model_version = (match.explanation or {}).get("model_version") or None


def decide(session: Session, match: Match, user: User, decision: Decision, reason: str | None = None) -> Match:
    """Apply one party's decision (interested, accepted or declined, with a decline's reason)."""
    sides = sides_of(match, user)
    if not sides:
        raise NotFound(f"match {match.id}")
    if decision is Decision.pending:
        raise Conflict(_l("A decision cannot be withdrawn."))
    reason = check_decline_reason(reason) if decision is Decision.declined else None
    # Re-read under a row lock: the status depends on the other side's column.
    match = match_for(session, user, match.public_id, lock=True)
    changed: list[Side] = []
    for side in sides:
        current = _decision(match, side)
        if current is decision:
            continue
        if decision is Decision.declined:
            if match.status is MatchStatus.accepted:
                raise Conflict(_l("Both firms have accepted this match; it can no longer be declined."))
        else:
            _require_open(match)
            if current is Decision.declined:
                raise Conflict(_l("You have declined this match."))
            if decision is Decision.interested and current is Decision.accepted:
                raise Conflict(_l("You have already accepted this match."))
        _set_decision(match, side, decision)
        if decision is Decision.declined:
            setattr(match, f"{side}_decline_reason", reason)
        changed.append(side)
    if not changed:
        return match
    _snapshot(match)

    if decision is Decision.declined:
        match.status = MatchStatus.declined
    elif match.offer_decision is Decision.accepted and match.need_decision is Decision.accepted:
        match.status = MatchStatus.accepted
        match.accepted_at = utcnow()
    else:
        match.status = MatchStatus.interested
    match.updated_at = utcnow()
    session.flush()
    for side in changed:
        _record(session, match, user, side, decision)
    session.flush()
    return match


def express_interest(session: Session, match: Match, user: User) -> Match:
    return decide(session, match, user, Decision.interested)


def accept(session: Session, match: Match, user: User) -> Match:
    """Accept; once both firms have, the match is accepted and their identities are revealed."""
    return decide(session, match, user, Decision.accepted)


def decline(session: Session, match: Match, user: User, reason: str | None = None) -> Match:
    return decide(session, match, user, Decision.declined, reason)


def record_exchange(session: Session, match: Match, user: User, data: Mapping[str, Any]) -> Exchange:
    """A realised transfer (`quantity`, `unit`, `date`) between the two firms of an accepted match.

    Tonnes are derived like a listing's lot (volumes through the offer's material family density).
    """
    if not sides_of(match, user):
        raise NotFound(f"match {match.id}")
    if not isinstance(data, Mapping):
        raise v.FieldError(_l("Expected an object."))
    errors = v.Collector()
    quantity = errors.check("quantity", v.number, data.get("quantity"), strictly_positive=True)
    unit_value = errors.check("unit", v.choice, data.get("unit"), listing_service.UNIT_SPELLINGS,
                              _l("Unknown unit: use t, kg, m3, L or unit."))
    when = errors.check("date", v.iso_date, data.get("date"))
    if when is None and "date" not in errors.errors:
        errors.add("date", _l("This field is required."))
    if isinstance(when, date):
        if when > date.today() + timedelta(days=1):
            errors.add("date", _l("A realised exchange cannot be dated in the future."))
        elif when < EARLIEST_EXCHANGE:
            errors.add("date", _l("This date is not plausible."))
    unit = Unit(unit_value) if unit_value else None
    if quantity and unit:
        limit = listing_service.MAX_UNITS_PER_LOT if unit is Unit.unit else listing_service.MAX_TONNES_PER_LOT
        in_tonnes = quantity if unit is Unit.unit else quantity * listing_service.TONNES_PER.get(unit, 1.0)
        if in_tonnes > limit:
            errors.add("quantity", _l("This quantity is not plausible for one lot; check the unit."))
    errors.raise_if_any()
    assert quantity is not None and unit is not None and isinstance(when, date)
    if match.status is not MatchStatus.accepted:
        raise Conflict(_l("Exchanges are recorded once both firms have accepted the match."))

    family = match.offer.family or match.need.family
    tonnes = listing_service.lot_tonnes(quantity, unit, family.density_t_per_m3 if family else None)
    exchange = Exchange(match=match, quantity=quantity, unit=unit, tonnes=tonnes, date=when,
                        recorded_by_id=user.id)
    session.add(exchange)
    session.flush()
    outbox.emit(session, "exchange.recorded", {"exchange_id": exchange.id, "match_id": match.id},
                f"exchange.recorded:{exchange.id}")
    session.add(AuditLog(
        actor_id=user.id,
        action="exchange.recorded",
        target_type="exchange",
        target_id=exchange.id,
        details={"match_id": match.id, "quantity": quantity, "unit": unit.value, "tonnes": tonnes},
    ))
    session.flush()
    return exchange
