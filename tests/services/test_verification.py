"""The one gate of an unconfirmed address, as the services apply it: no publishing, no match e-mail."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from matchmaking.models import Match, Notification, OutboxEvent
from matchmaking.services import listings, notifications, verification
from tests.factories import make_firm, make_listing, make_user


def _unconfirmed(session, firm):
    user = make_user(session, firm)
    user.email_confirmed_at = None
    session.flush()
    return user


def test_publishing_needs_a_confirmed_member_but_a_draft_does_not(session) -> None:
    firm = make_firm(session)
    user = _unconfirmed(session, firm)
    data = {"kind": "offer", "title": "Sciure", "quantity": 2, "unit": "t", "frequency": "monthly"}
    with pytest.raises(verification.Unconfirmed):
        listings.create_listing(session, firm, data, by=user)
    draft = listings.create_listing(session, firm, data, publish=False, by=user)
    with pytest.raises(verification.Unconfirmed):
        listings.set_status(session, draft, draft.status.published, by=user)
    user.email_confirmed_at = user.created_at
    assert listings.create_listing(session, firm, data, by=user).status.value == "published"


def test_an_unconfirmed_member_is_told_in_the_app_but_gets_no_match_email(session) -> None:
    seller_firm, buyer_firm = make_firm(session), make_firm(session)
    confirmed = make_user(session, seller_firm)
    pending = _unconfirmed(session, buyer_firm)
    offer = make_listing(session, seller_firm)
    need = make_listing(session, buyer_firm, kind="need", title="Caoutchouc")
    match = Match(offer=offer, need=need, score=0.9, distance_km=3.0, explanation={})
    session.add(match)
    session.flush()
    made = notifications.notify_match(session, match)
    assert {n.user_id for n in made} == {confirmed.id, pending.id}
    mailed = [row.payload["user_id"] for row in session.scalars(
        select(OutboxEvent).where(OutboxEvent.kind == "deliver.email"))]
    assert mailed == [confirmed.id]
    assert session.scalar(select(Notification).where(Notification.user_id == pending.id)) is not None
    session.rollback()


def test_a_firm_that_renames_itself_loses_the_mark_until_the_ccma_looks_again(session) -> None:
    from matchmaking.models import AuditLog
    from matchmaking.services import sites

    firm = make_firm(session, name="Scierie du Mont")
    firm.verified_at = firm.created_at
    sites.update_firm(session, firm, {"name": "Scierie du Mont", "contact_phone": "02 43 00 00 00"})
    assert firm.verified
    sites.update_firm(session, firm, {"name": "Scierie Nouvelle"})
    assert not firm.verified
    session.flush()
    row = session.scalar(select(AuditLog).where(AuditLog.action == verification.FIRM_UNVERIFIED))
    assert row.target_id == firm.id and row.details["old_name"] == "Scierie du Mont"


def test_an_unconfirmed_member_may_not_rewrite_a_published_listing_but_may_close_it(session) -> None:
    firm = make_firm(session)
    user = _unconfirmed(session, firm)
    listing = make_listing(session, firm)  # published for the firm (e.g. before this member joined)
    with pytest.raises(verification.Unconfirmed):
        listings.update_listing(session, listing, {"title": "Autre chose"}, by=user)
    listings.update_listing(session, listing, {}, by=user)
    listings.set_status(session, listing, listing.status.closed, by=user)
    assert listing.status.value == "closed"
