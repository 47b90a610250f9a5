"""The facilitators' services: queue, a look at a match (audited), introductions, notes, follow-up,
listings kept for a firm, reminders of listings nobody confirmed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from matchmaking.models import (
    AuditLog,
    Decision,
    FollowUp,
    Listing,
    ListingStatus,
    Match,
    MatchStatus,
    Notification,
    OutboxEvent,
    utcnow,
)
from matchmaking.services import facilitation, queries
from matchmaking.services.errors import Conflict, NotFound, ValidationError
from tests.factories import make_firm, make_listing, make_user


def pair(session: Any, score: float = 0.8, *, anonymous_need: bool = False, age_days: int = 3) -> Match:
    offer_firm = make_firm(session, name="Scierie du Pail")
    need_firm = make_firm(session, name="EARL des Volailles", commune_insee="53185")
    make_user(session, offer_firm)
    make_user(session, need_firm)
    make_user(session, need_firm)
    offer = make_listing(session, offer_firm, title="Sciure de résineux", low_code="03 01 05", quantity=10,
                         unit="t")
    need = make_listing(session, need_firm, kind="need", title="Litière pour volailles", quantity=8, unit="t",
                        radius_km=40, anonymous=anonymous_need)
    match = Match(offer=offer, need=need, score=score, distance_km=12.5, explanation={},
                  created_at=utcnow() - timedelta(days=age_days))
    session.add(match)
    session.flush()
    return match


@pytest.fixture()
def facilitator(session: Any) -> Any:
    return make_user(session, role="facilitator", name="Camille Animatrice")


def test_the_queue_lists_untouched_promising_matches_best_and_oldest_first(session: Any, facilitator: Any) -> None:
    # Scores above the shown threshold (the queue's floor), and one under it.
    t = queries.shown_threshold()

    def above(x: float) -> float:
        return t + (1 - t) * x

    best = pair(session, above(0.9), age_days=1)
    older = pair(session, above(0.7), age_days=30)
    newer = pair(session, above(0.7), age_days=2)
    weak = pair(session, t / 2)
    introduced = pair(session, 0.95)
    introduced.introduced_at = utcnow()
    declined = pair(session, 0.95)
    declined.status, declined.need_decision = MatchStatus.declined, Decision.declined
    noted = pair(session, 0.95)
    facilitation.add_note(session, noted, facilitator, "Appelé le gérant, rappeler lundi")
    closed = pair(session, 0.95)
    closed.offer.status = ListingStatus.closed
    half = pair(session, above(0.6))
    half.status, half.offer_decision = MatchStatus.interested, Decision.interested
    session.flush()

    items, total = facilitation.queue(session)

    assert [item.match.id for item in items] == [best.id, older.id, newer.id, half.id]
    assert total == 4
    assert items[1].age_days == 30
    assert weak.id not in [item.match.id for item in items]


def test_opening_a_match_is_written_to_the_audit_log(session: Any, facilitator: Any) -> None:
    match = pair(session)
    opened = facilitation.open_match(session, facilitator, match.id)
    log = session.scalars(select(AuditLog).where(AuditLog.action == "match.viewed")).one()
    assert opened.id == match.id
    assert (log.actor_id, log.target_type, log.target_id) == (facilitator.id, "match", match.id)
    assert log.details["firm_ids"] == sorted({match.offer.firm_id, match.need.firm_id})


def test_only_facilitators_and_administrators_facilitate(session: Any) -> None:
    match = pair(session)
    analyst = make_user(session, role="analyst")
    with pytest.raises(NotFound):
        facilitation.open_match(session, analyst, match.id)
    with pytest.raises(NotFound):
        facilitation.introduce(session, match, analyst, "Bonjour")
    admin = make_user(session, role="admin")
    assert facilitation.open_match(session, admin, match.id) is match


def test_introducing_tells_every_member_of_both_firms_and_queues_the_deliveries(session: Any,
                                                                                facilitator: Any) -> None:
    match = pair(session, anonymous_need=True)
    made = facilitation.introduce(session, match, facilitator, "La scierie a 10 t de sciure par mois.")

    assert len(made) == 3  # one member of the offering firm, two of the need's
    notes = session.scalars(select(Notification).where(Notification.kind == "match.introduced")).all()
    assert {n.user.firm_id for n in notes} == {match.offer.firm_id, match.need.firm_id}
    assert all(n.payload["message"] == "La scierie a 10 t de sciure par mois." for n in notes)
    to_offer = next(n for n in notes if n.user.firm_id == match.offer.firm_id)
    to_need = next(n for n in notes if n.user.firm_id == match.need.firm_id)
    assert to_offer.payload["other_firm_name"] is None  # the need is anonymous: not lifted by the CCMA
    assert to_need.payload["other_firm_name"] == "Scierie du Pail"
    event = session.scalars(select(OutboxEvent).where(OutboxEvent.kind == "match.introduced")).one()
    assert event.payload["match_id"] == match.id
    assert sorted(event.payload["notification_ids"]) == sorted(n.id for n in made)
    assert match.follow_up is FollowUp.contacted and match.introduced_at is not None
    assert match.facilitator_id == facilitator.id
    with pytest.raises(Conflict):
        facilitation.introduce(session, match, facilitator, "Encore")


def test_an_introduction_needs_a_message(session: Any, facilitator: Any) -> None:
    match = pair(session)
    with pytest.raises(ValidationError) as exc:
        facilitation.introduce(session, match, facilitator, "   ")
    assert "message" in exc.value.errors
    assert match.introduced_at is None


def test_follow_up_moves_and_a_drop_needs_its_reason(session: Any, facilitator: Any) -> None:
    match = pair(session)
    facilitation.set_follow_up(session, match, facilitator, "trial")
    assert match.follow_up is FollowUp.trial
    with pytest.raises(ValidationError) as exc:
        facilitation.set_follow_up(session, match, facilitator, "dropped", "")
    assert "reason" in exc.value.errors
    facilitation.set_follow_up(session, match, facilitator, "dropped", "Sciure trop humide pour la litière")
    assert (match.follow_up, match.drop_reason) == (FollowUp.dropped, "Sciure trop humide pour la litière")
    facilitation.set_follow_up(session, match, facilitator, "contacted")
    assert match.drop_reason is None
    moves = [log.details for log in session.scalars(
        select(AuditLog).where(AuditLog.action == "match.follow_up").order_by(AuditLog.id))]
    assert [(m["from"], m["to"]) for m in moves] == [("proposed", "trial"), ("trial", "dropped"),
                                                     ("dropped", "contacted")]
    with pytest.raises(ValidationError):
        facilitation.set_follow_up(session, match, facilitator, "married")


def test_notes_are_kept_newest_first(session: Any, facilitator: Any) -> None:
    match = pair(session)
    facilitation.add_note(session, match, facilitator, "Premier appel")
    facilitation.add_note(session, match, facilitator, "Échantillon envoyé")
    assert [n.text for n in facilitation.notes(session, match)] == ["Échantillon envoyé", "Premier appel"]
    with pytest.raises(ValidationError):
        facilitation.add_note(session, match, facilitator, "")


def test_listings_written_for_a_firm_are_audited(session: Any, facilitator: Any) -> None:
    firm = make_firm(session, name="Fromagerie du Désert")
    listing = facilitation.create_listing_for(session, facilitator, firm, {
        "kind": "offer", "title": "Petit-lait de chèvre", "quantity": 800, "unit": "L", "frequency": "weekly",
        "low_code": "02 05 01"})
    assert listing.firm_id == firm.id and listing.status is ListingStatus.published
    facilitation.update_listing_for(session, facilitator, listing, {"quantity": 1000})
    logs = {log.action: log for log in session.scalars(select(AuditLog).where(AuditLog.target_id == listing.id))}
    assert logs["listing.created_on_behalf"].actor_id == facilitator.id
    assert logs["listing.updated_on_behalf"].details["changes"]["quantity"] == [800, 1000]
    with pytest.raises(ValidationError):
        facilitation.create_listing_for(session, facilitator, firm, {"kind": "offer", "title": ""})


def _listing_confirmed(session: Any, days_ago: int) -> Listing:
    firm = make_firm(session)
    make_user(session, firm)
    listing = make_listing(session, firm)
    listing.confirmed_at = utcnow() - timedelta(days=days_ago)
    session.flush()
    return listing


def test_reminders_go_to_listings_unconfirmed_for_90_days_once_a_month(session: Any) -> None:
    stale = _listing_confirmed(session, 100)
    fresh = _listing_confirmed(session, 10)
    paused = _listing_confirmed(session, 200)
    paused.status = ListingStatus.paused
    now = utcnow()

    assert facilitation.listings_due_for_reminder(session, now) == [stale]
    sent = facilitation.send_reminders(session, now)
    assert sent == [stale]
    events = session.scalars(select(OutboxEvent).where(OutboxEvent.kind == "listing.reminder")).all()
    assert [e.payload["listing_id"] for e in events] == [stale.id]
    assert events[0].payload["user_ids"] and events[0].payload["firm_id"] == stale.firm_id
    session.refresh(stale)
    assert stale.reminded_at is not None

    assert facilitation.send_reminders(session, now + timedelta(hours=3)) == []  # the same day: nothing new
    assert facilitation.send_reminders(session, now + timedelta(days=29)) == []
    assert facilitation.send_reminders(session, now + timedelta(days=31)) == [stale]  # no answer: again
    assert fresh not in facilitation.listings_due_for_reminder(session, now + timedelta(days=31))


def test_a_confirmed_listing_is_no_longer_reminded(session: Any) -> None:
    from matchmaking.services import listings

    stale = _listing_confirmed(session, 120)
    now = utcnow()
    facilitation.send_reminders(session, now)
    listings.update_listing(session, stale, {"quantity": 20})  # the firm answers: still valid
    assert facilitation.listings_due_for_reminder(session, now + timedelta(days=40)) == []
