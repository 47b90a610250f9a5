"""From a published listing to notifications and delivery rows, with the tasks called directly."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from matchmaking.models import (
    Listing,
    ListingStatus,
    MailboxMessage,
    Match,
    Notification,
    NotifyMode,
    OutboxEvent,
    OutboxStatus,
    WebhookEndpoint,
)
from matchmaking.services import listings, notifications
from tests.factories import make_listing, make_user
from workers import tasks


def _events(session: Any, kind: str) -> list[OutboxEvent]:
    return list(session.scalars(select(OutboxEvent).where(OutboxEvent.kind == kind).order_by(OutboxEvent.id)))


def _run_all(session: Any, kind_prefix: str = "") -> list[str]:
    """Run every pending outbox row (oldest first) until none is left, like a worker would."""
    outcomes = []
    for _ in range(10):
        rows = [e.id for e in session.scalars(select(OutboxEvent).where(OutboxEvent.status == OutboxStatus.pending))
                if e.kind.startswith(kind_prefix)]
        if not rows:
            break
        outcomes += [tasks.run_event(row) for row in rows]
    return outcomes


def test_publishing_tells_members_of_both_firms_once(wsession: Any, firms: Any, fake_engine: None) -> None:
    make_listing(wsession, firms["seller"], title="Sciure de chêne")
    need = make_listing(wsession, firms["buyer"], kind="need", title="Sciure de chêne")
    wsession.commit()

    outcomes = _run_all(wsession, "listing.")
    assert "done" in outcomes
    match = wsession.scalar(select(Match))
    assert match is not None and match.need_id == need.id
    found = wsession.scalars(select(Notification).where(Notification.kind == "match.found")).all()
    assert {n.user_id for n in found} == {firms["seller_user"].id, firms["buyer_user"].id}
    assert all(n.dedup_key == f"match.found:{match.id}" for n in found)
    assert len(_events(wsession, "deliver.email")) == 2

    # Handling the same change again tells nobody twice.
    listings.update_listing(wsession, need, {"description": "Pour litière"})
    wsession.commit()
    _run_all(wsession, "listing.")
    assert wsession.scalar(select(Notification).where(Notification.kind != "match.found")) is None
    assert len(_events(wsession, "deliver.email")) == 2


def test_preferences_decide_who_hears_and_how(wsession: Any, firms: Any, fake_engine: None) -> None:
    buyer = firms["buyer"]
    daily = make_user(wsession, buyer, email="daily@elevage.example.fr")
    daily.notify_mode = NotifyMode.daily
    off = make_user(wsession, buyer, email="off@elevage.example.fr")
    off.notify_mode = NotifyMode.off
    picky = make_user(wsession, buyer, email="picky@elevage.example.fr")
    picky.notify_min_score = 0.95
    no_mail = make_user(wsession, buyer, email="nomail@elevage.example.fr")
    no_mail.notify_email = False
    make_listing(wsession, firms["seller"], title="Drêches")
    make_listing(wsession, buyer, kind="need", title="Drêches")
    wsession.commit()
    _run_all(wsession, "listing.")

    told = {n.user_id for n in wsession.scalars(select(Notification))}
    assert told == {firms["seller_user"].id, firms["buyer_user"].id, daily.id, no_mail.id}
    emails = _events(wsession, "deliver.email")
    mailed = {e.payload["user_id"] for e in emails}
    assert mailed == {firms["seller_user"].id, firms["buyer_user"].id}
    # The instant users' notices are e-mailed, so no digest owes them; the others' wait.
    assert {n.user_id for n in wsession.scalars(select(Notification).where(Notification.digested_at.is_(None)))} \
        == {daily.id, no_mail.id}

    # The daily user's notice waits for the digest; a second digest run the same day adds nothing.
    assert notifications.queue_digests(wsession, NotifyMode.daily) == 1
    assert notifications.queue_digests(wsession, NotifyMode.daily) == 0
    (digest,) = _events(wsession, "deliver.digest")
    assert digest.payload["user_id"] == daily.id


def test_a_firm_webhook_gets_one_call_per_event(wsession: Any, firms: Any, fake_engine: None) -> None:
    buyer = firms["buyer"]
    make_user(wsession, buyer, email="second@elevage.example.fr")
    endpoint = WebhookEndpoint(firm_id=buyer.id, url="https://hooks.example.fr/mm", secret="whsec_" + "A" * 32)
    off = WebhookEndpoint(firm_id=buyer.id, url="https://old.example.fr/mm", secret="whsec_" + "A" * 32,
                          active=False)
    wsession.add_all([endpoint, off])
    make_listing(wsession, firms["seller"], title="Palettes cassées")
    make_listing(wsession, buyer, kind="need", title="Palettes cassées")
    wsession.commit()
    _run_all(wsession, "listing.")

    hooks = _events(wsession, "deliver.webhook")
    assert [h.payload["endpoint_id"] for h in hooks] == [endpoint.id]
    triggers = {f"ev{e.id}" for e in _events(wsession, "listing.changed")}
    assert hooks[0].payload["trigger"] in triggers
    assert hooks[0].idempotency_key == f"webhook:{hooks[0].payload['trigger']}:{endpoint.id}"
    # Two members were told of the one match: the firm hears of it once.
    assert len(hooks[0].payload["notification_ids"]) == 1


def test_embedded_mailbox_receives_each_email_once(wsession: Any, firms: Any, fake_engine: None) -> None:
    make_listing(wsession, firms["seller"], title="Chutes de verre")
    make_listing(wsession, firms["buyer"], kind="need", title="Chutes de verre")
    wsession.commit()
    _run_all(wsession)

    mails = wsession.scalars(select(MailboxMessage).order_by(MailboxMessage.to)).all()
    assert [m.to for m in mails] == ["achat@elevage.example.fr", "vente@scierie.example.fr"]
    assert all(e.status is OutboxStatus.done for e in wsession.scalars(select(OutboxEvent)))
    # A duplicate message for a done row does nothing.
    email_row = _events(wsession, "deliver.email")[0]
    assert tasks.run_event(email_row.id) == "skipped"
    assert wsession.query(MailboxMessage).count() == 2


def test_a_decision_tells_the_other_firm(wsession: Any, firms: Any, fake_engine: None) -> None:
    from matchmaking.services import decisions

    make_listing(wsession, firms["seller"], title="Big bags")
    make_listing(wsession, firms["buyer"], kind="need", title="Big bags")
    wsession.commit()
    _run_all(wsession, "listing.")
    match = wsession.scalar(select(Match))
    decisions.express_interest(wsession, match, firms["buyer_user"])
    wsession.commit()
    _run_all(wsession, "match.")
    (notice,) = wsession.scalars(select(Notification).where(Notification.kind == "match.interested")).all()
    assert notice.user_id == firms["seller_user"].id

    decisions.accept(wsession, match, firms["buyer_user"])
    decisions.accept(wsession, match, firms["seller_user"])
    wsession.commit()
    _run_all(wsession, "match.")
    accepted = wsession.scalars(select(Notification).where(Notification.kind == "match.accepted")).all()
    assert {n.user_id for n in accepted} == {firms["seller_user"].id, firms["buyer_user"].id}


def test_an_unknown_event_ends_failed_not_in_a_loop(wsession: Any) -> None:
    from matchmaking.services import outbox

    event = outbox.emit(wsession, "something.new", {}, "something.new:1")
    wsession.commit()
    assert tasks.run_event(event.id) == "failed"
    wsession.refresh(event)
    assert event.status is OutboxStatus.failed and "no handler" in (event.last_error or "")


def test_expired_listings_are_closed_and_rematched(wsession: Any, firms: Any) -> None:
    from matchmaking.services import expiry

    old = make_listing(wsession, firms["seller"], title="Vieux lot", available_until="2020-01-31")
    current = make_listing(wsession, firms["seller"], title="Lot courant", available_until="2999-01-31")
    wsession.commit()
    assert expiry.expire_listings(wsession) == [old.id]
    assert wsession.get(Listing, old.id).status is ListingStatus.expired
    assert wsession.get(Listing, current.id).status is ListingStatus.published
    assert any(e.payload == {"listing_id": old.id} for e in _events(wsession, "listing.changed")[1:])


def test_full_rematch_is_split_by_family(wsession: Any, firms: Any, fake_engine: None) -> None:
    ids = [make_listing(wsession, firms["seller"], title=f"Lot {i}").id for i in range(5)]
    wsession.commit()
    groups = notifications.rematch_groups(wsession, size=2)
    assert sorted(i for g in groups for i in g) == sorted(ids)
    assert max(len(g) for g in groups) <= 2
    assert notifications.rematch(wsession, ids) == (5, 0)
