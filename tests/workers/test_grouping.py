"""Grouped deliveries: one e-mail per recipient and one webhook call per endpoint for each event,
never a second one for the same event, and nothing about a hidden firm in what is sent."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from matchmaking.models import (
    MailboxMessage,
    Match,
    Notification,
    NotifyMode,
    OutboxEvent,
    OutboxStatus,
    WebhookEndpoint,
)
from matchmaking.services import delivery, notifications, visibility
from tests.factories import make_firm, make_listing, make_user
from workers import tasks

from .test_pipeline import _events, _run_all


def _settings() -> delivery.Settings:
    return delivery.Settings(sender="Matières <ne-pas-repondre@avaloirs.example.fr>", base_url="https://mm.example.fr",
                             secret_key="k")


def _mails(session: Any) -> dict[str, list[MailboxMessage]]:
    out: dict[str, list[MailboxMessage]] = {}
    for mail in session.scalars(select(MailboxMessage).order_by(MailboxMessage.id)):
        out.setdefault(mail.to, []).append(mail)
    return out


def _sellers(session: Any, n: int, title: str) -> list[Any]:
    users = []
    for i in range(n):
        firm = make_firm(session, name=f"Scierie numéro {i}")
        users.append(make_user(session, firm, email=f"vente{i}@scierie.example.fr", name=f"S{i}"))
        make_listing(session, firm, title=title)
    session.commit()
    _run_all(session)  # the offers alone match nothing
    return users


def test_a_need_matching_twelve_offers_sends_one_email_per_recipient(wsession: Any, fake_engine: None) -> None:
    title = "Sciure de chêne"
    sellers = _sellers(wsession, 12, title)
    buyer = make_firm(wsession, name="Élevage des Coëvrons")
    first = make_user(wsession, buyer, email="achat@elevage.example.fr", name="Bruno")
    second = make_user(wsession, buyer, email="compta@elevage.example.fr", name="Claire")
    wsession.add(WebhookEndpoint(firm_id=buyer.id, url="https://hooks.example.fr/mm", secret="whsec_" + "A" * 32))
    need = make_listing(wsession, buyer, kind="need", title=title)
    wsession.commit()
    _run_all(wsession, "listing.")

    # In the inbox, one notice per match; on the way out, one e-mail per person, one webhook call.
    assert wsession.scalar(select(func.count()).select_from(Notification)
                           .where(Notification.user_id == first.id)) == 12
    emails = _events(wsession, "deliver.email")
    assert Counter(e.payload["user_id"] for e in emails) == Counter({u.id: 1 for u in [first, second, *sellers]})
    (hook,) = _events(wsession, "deliver.webhook")
    assert len(hook.payload["notification_ids"]) == 12

    _run_all(wsession, "deliver.")
    mails = _mails(wsession)
    assert all(len(got) == 1 for got in mails.values()) and len(mails) == 14
    (mail,) = mails[first.email]
    assert mail.subject == f"Votre annonce « {title} » a 12 nouvelles correspondances"
    assert mail.text.count("Score : 80 %") == 10  # the best ten, then a link to the rest
    assert "… et 2 autres correspondances" in mail.text
    assert f"/matches#g-{need.public_id}" in mail.text
    assert "mots communs : sciure" in mail.text and "12 km ·" not in mail.text
    # The offers are not anonymous: their firms are named (which ten of the twelve, the public ids say).
    assert len(set(re.findall(r"Scierie numéro \d+", mail.text))) == 10
    # Equal scores, listed by the matches' public ids, not in the order they were made in.
    notices = list(wsession.scalars(select(Notification).where(Notification.user_id == first.id)
                                    .order_by(Notification.id)))
    entries = delivery.notice_entries(wsession, visibility.audience(wsession, first), notices, _settings())
    made = [n.match.public_id for n in notices]
    assert [e["match_id"] for e in entries] == sorted(made)
    # Each seller hears once, of the one new partner listing, by name.
    (to_seller,) = mails[sellers[0].email]
    assert to_seller.subject == f"Nouvelle correspondance pour « {title} » : « {title} »"
    assert "Élevage des Coëvrons" in to_seller.text and "Scierie numéro 1" not in to_seller.text
    assert "couvre 50 % du besoin annuel" in to_seller.text  # worded from the seller's side


def test_running_the_match_task_again_sends_nothing_more(wsession: Any, fake_engine: None) -> None:
    sellers = _sellers(wsession, 3, "Palettes")
    buyer = make_firm(wsession, name="Menuiserie")
    make_user(wsession, buyer, email="achat@menuiserie.example.fr")
    make_listing(wsession, buyer, kind="need", title="Palettes")
    wsession.commit()
    _run_all(wsession)
    delivered = (wsession.query(MailboxMessage).count(), wsession.query(OutboxEvent).count())
    assert delivered[0] == 4

    # The same event handled again (a redelivered message, the row reset by hand), and a fresh
    # change of every listing: no new notice, no new delivery.
    event = _events(wsession, "listing.changed")[-1]
    assert tasks.run_event(event.id) == "skipped"
    assert notifications.on_listing_changed(wsession, event).endswith("0 delivery(ies)")
    event.status = OutboxStatus.pending
    wsession.commit()
    assert tasks.run_event(event.id) == "done"
    for listing_event in _events(wsession, "listing.changed"):
        notifications.rematch(wsession, [listing_event.payload["listing_id"]])
    wsession.commit()
    _run_all(wsession)
    assert (wsession.query(MailboxMessage).count(), wsession.query(OutboxEvent).count()) == delivered
    assert len(sellers) == 3


def test_a_crash_before_the_deliveries_are_written_leaves_nothing_half_done(
        wsession: Any, fake_engine: None, monkeypatch: pytest.MonkeyPatch) -> None:
    _sellers(wsession, 2, "Drêches")
    buyer = make_firm(wsession, name="Ferme")
    make_user(wsession, buyer, email="achat@ferme.example.fr")
    make_listing(wsession, buyer, kind="need", title="Drêches")
    wsession.commit()
    event = _events(wsession, "listing.changed")[-1]
    real = notifications.queue_deliveries

    def crash(*args: Any) -> int:
        raise RuntimeError("worker died between the notices and their deliveries")

    monkeypatch.setattr(notifications, "queue_deliveries", crash)
    assert tasks.run_event(event.id) == "retry"
    assert wsession.query(Notification).count() == 0 and wsession.query(Match).count() == 0

    monkeypatch.setattr(notifications, "queue_deliveries", real)
    wsession.refresh(event)
    event.next_attempt_at = event.created_at
    wsession.commit()
    assert tasks.run_event(event.id) == "done"
    _run_all(wsession, "deliver.")
    assert Counter(m.to for m in wsession.scalars(select(MailboxMessage))) == Counter(
        {"achat@ferme.example.fr": 1, "vente0@scierie.example.fr": 1, "vente1@scierie.example.fr": 1})


def test_a_second_run_with_more_news_for_the_same_event_is_not_swallowed(wsession: Any, firms: Any,
                                                                        fake_engine: None) -> None:
    make_listing(wsession, firms["seller"], title="Verre")
    make_listing(wsession, firms["seller"], title="Verre plat")
    first = make_listing(wsession, firms["buyer"], kind="need", title="Verre")
    second = make_listing(wsession, firms["buyer"], kind="need", title="Verre plat")
    wsession.flush()
    from .fake_engine import fake_refresh

    (match_a, _), = fake_refresh(wsession, first.id)
    (match_b, _), = fake_refresh(wsession, second.id)
    made_a = notifications.tell_match(wsession, match_a)
    assert notifications.queue_deliveries(wsession, made_a, "ev999") == 2
    assert notifications.queue_deliveries(wsession, made_a, "ev999") == 2  # same notices: same rows
    made_b = notifications.tell_match(wsession, match_b)
    notifications.queue_deliveries(wsession, made_b, "ev999")
    emails = _events(wsession, "deliver.email")
    assert len(emails) == 4
    assert sorted(n for e in emails for n in e.payload["notification_ids"]) == sorted(
        n.id for n in made_a + made_b)


def test_minimum_score_and_channels(wsession: Any, firms: Any, fake_engine: None) -> None:
    buyer = firms["buyer"]
    picky = make_user(wsession, buyer, email="picky@elevage.example.fr")
    picky.notify_min_score = 0.9  # the stand-in engine scores 0.8
    no_hook = make_user(wsession, buyer, email="nohook@elevage.example.fr")
    no_hook.notify_webhook = False
    firms["buyer_user"].notify_webhook = False
    firms["seller_user"].notify_email = False
    wsession.add(WebhookEndpoint(firm_id=buyer.id, url="https://hooks.example.fr/mm", secret="whsec_" + "A" * 32))
    wsession.add(WebhookEndpoint(firm_id=firms["seller"].id, url="https://s.example.fr/mm",
                                 secret="whsec_" + "A" * 32))
    make_listing(wsession, firms["seller"], title="Copeaux")
    make_listing(wsession, buyer, kind="need", title="Copeaux")
    wsession.commit()
    _run_all(wsession, "listing.")
    assert {e.payload["user_id"] for e in _events(wsession, "deliver.email")} == {firms["buyer_user"].id, no_hook.id}
    # No member of the buyer firm wants webhooks: only the seller's endpoint is called.
    hooks = _events(wsession, "deliver.webhook")
    assert [wsession.get(WebhookEndpoint, h.payload["endpoint_id"]).firm_id for h in hooks] == [firms["seller"].id]
    assert wsession.scalar(select(Notification).where(Notification.user_id == picky.id)) is None


def test_a_decision_is_one_email_of_its_own(wsession: Any, firms: Any, fake_engine: None) -> None:
    from matchmaking.services import decisions

    make_listing(wsession, firms["seller"], title="Big bags")
    make_listing(wsession, firms["buyer"], kind="need", title="Big bags")
    wsession.commit()
    _run_all(wsession)
    decisions.express_interest(wsession, wsession.scalar(select(Match)), firms["buyer_user"])
    wsession.commit()
    _run_all(wsession)
    mails = _mails(wsession)
    assert len(mails[firms["seller_user"].email]) == 2
    latest = mails[firms["seller_user"].email][-1]
    assert "intéressée" in latest.subject and "Big bags" in latest.text


def test_an_introduction_is_delivered(wsession: Any, firms: Any, fake_engine: None) -> None:
    from matchmaking.models import Role
    from matchmaking.services import facilitation

    make_listing(wsession, firms["seller"], title="Cartons")
    make_listing(wsession, firms["buyer"], kind="need", title="Cartons")
    wsession.commit()
    _run_all(wsession)
    facilitator = make_user(wsession, None, email="anim@ccma.example.fr", name="Denise", role=Role.facilitator.value)
    facilitation.introduce(wsession, wsession.scalar(select(Match)), facilitator, "Vous pourriez vous parler.")
    wsession.commit()
    _run_all(wsession)
    (event,) = _events(wsession, "match.introduced")
    assert event.status is OutboxStatus.done
    mail = _mails(wsession)[firms["buyer_user"].email][-1]
    assert "Denise" in mail.text and "Vous pourriez vous parler." in mail.text


# --- anonymity -----------------------------------------------------------------------------------


@pytest.fixture()
def three_firms(wsession: Any, fake_engine: None) -> dict[str, Any]:
    """A buyer whose need matches an anonymous offer (hidden firm, exact site away from its
    commune's centre, a price, an address) and a public one."""
    hidden = make_firm(wsession, name="Discrète Industries", address="12 rue Cachée")
    public = make_firm(wsession, name="Publique SARL")
    buyer = make_firm(wsession, name="Acheteuse SAS")
    hidden.sites[0].lat += 0.1  # about 11 km north of the commune's centre
    users = {
        "hidden": make_user(wsession, hidden, email="x@discrete.example.fr"),
        "public": make_user(wsession, public, email="p@publique.example.fr"),
        "buyer": make_user(wsession, buyer, email="a@acheteuse.example.fr"),
    }
    for firm in (hidden, public, buyer):
        wsession.add(WebhookEndpoint(firm_id=firm.id, url=f"https://hooks.example.fr/{firm.id}",
                                     secret="whsec_" + "A" * 32))
    make_listing(wsession, hidden, title="Chutes de PVC", anonymous=True, price_eur_per_unit=42.5)
    make_listing(wsession, public, title="Chutes de PVC", price_eur_per_unit=17)
    wsession.commit()
    _run_all(wsession)
    make_listing(wsession, buyer, kind="need", title="Chutes de PVC")
    wsession.commit()
    _run_all(wsession)
    return {"hidden": hidden, "public": public, "buyer": buyer, **{f"{k}_user": u for k, u in users.items()}}


SECRETS = ("Discrète Industries", "12 rue Cachée", "42.5", "42,5", "42,50")


def test_emails_never_name_a_hidden_firm(wsession: Any, three_firms: Any) -> None:
    mails = _mails(wsession)
    to_buyer = mails["a@acheteuse.example.fr"][0]
    body = to_buyer.text + (to_buyer.html or "")
    assert not [s for s in SECRETS if s in body + to_buyer.subject]
    assert "Publique SARL" in body and "Annonce anonyme" in body
    # The third firm hears of the buyer's need only; the hidden firm appears nowhere.
    to_public = mails["p@publique.example.fr"][0]
    assert not [s for s in SECRETS if s in to_public.text + (to_public.html or "") + to_public.subject]
    assert "Acheteuse SAS" in to_public.text
    # The hidden firm's own e-mail may name the (public) buyer.
    assert "Acheteuse SAS" in mails["x@discrete.example.fr"][0].text


def test_webhook_payloads_follow_the_visibility_rules(wsession: Any, three_firms: Any) -> None:
    settings = _settings()
    bodies = {}
    for row in _events(wsession, "deliver.webhook"):
        endpoint = wsession.get(WebhookEndpoint, row.payload["endpoint_id"])
        bodies[endpoint.firm_id] = delivery.webhook_batch_body(wsession, row, endpoint, settings)
    assert set(bodies) == {three_firms["hidden"].id, three_firms["public"].id, three_firms["buyer"].id}
    to_buyer = bodies[three_firms["buyer"].id]
    assert to_buyer["type"] == "matches.found" and to_buyer["data"]["count"] == 2
    by_title = {m["other_firm_name"]: m for m in to_buyer["data"]["matches"]}
    assert set(by_title) == {None, "Publique SARL"}
    hidden = by_title[None]
    # Three firms share the commune, fewer than k: the distance is to a wider area, rounded to its step.
    assert hidden["other_price_eur_per_unit"] is None
    assert hidden["distance_km"] > 0 and hidden["distance_km"] % 5 == 0
    assert by_title["Publique SARL"]["other_price_eur_per_unit"] == 17
    for body in bodies.values():
        text = json.dumps(body, ensure_ascii=False)
        assert not [s for s in SECRETS if s in text] or body is bodies[three_firms["hidden"].id]
        assert "lat" not in text and "address" not in text


def test_an_accepted_match_reveals_the_firm(wsession: Any, three_firms: Any) -> None:
    from matchmaking.services import decisions

    match = wsession.scalar(select(Match).join(Match.offer).where(Match.offer.has(firm_id=three_firms["hidden"].id)))
    decisions.accept(wsession, match, three_firms["buyer_user"])
    decisions.accept(wsession, match, three_firms["hidden_user"])
    wsession.commit()
    _run_all(wsession)
    row = _events(wsession, "deliver.email")[-1]
    notices = [wsession.get(Notification, i) for i in row.payload["notification_ids"]]
    user = notices[0].user
    from matchmaking.services import visibility

    (entry,) = delivery.notice_entries(wsession, visibility.audience(wsession, user), notices, _settings())
    assert entry["kind"] == "match.accepted"
    if user.firm_id == three_firms["buyer"].id:
        assert entry["other_firm_name"] == "Discrète Industries" and entry["other_price_eur_per_unit"] == 42.5


# --- digests -------------------------------------------------------------------------------------


def test_a_digest_groups_every_pending_notice_once(wsession: Any, fake_engine: None) -> None:
    from datetime import timedelta

    from matchmaking.models import utcnow

    buyer = make_firm(wsession, name="Élevage")
    daily = make_user(wsession, buyer, email="daily@elevage.example.fr")
    daily.notify_mode = NotifyMode.daily
    _sellers(wsession, 3, "Paille")
    make_listing(wsession, buyer, kind="need", title="Paille")
    make_listing(wsession, buyer, kind="need", title="Foin")
    make_firm_offer = make_firm(wsession, name="Ferme du Foin")
    make_user(wsession, make_firm_offer, email="foin@ferme.example.fr")
    make_listing(wsession, make_firm_offer, title="Foin")
    wsession.commit()
    _run_all(wsession)
    assert "daily@elevage.example.fr" not in _mails(wsession)  # no instant e-mail

    now = utcnow()
    assert notifications.queue_digests(wsession, NotifyMode.daily, now) == 1
    assert notifications.queue_digests(wsession, NotifyMode.daily, now + timedelta(hours=1)) == 0
    wsession.commit()
    (digest,) = _events(wsession, "deliver.digest")
    assert len(digest.payload["notification_ids"]) == 4
    assert wsession.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == daily.id, Notification.digested_at.is_(None))) == 0
    _run_all(wsession, "deliver.")
    (mail,) = _mails(wsession)["daily@elevage.example.fr"]
    assert mail.subject == "Votre résumé du jour : 4 avis"
    assert mail.text.count("Score : 80 %") == 4 and "« Paille »" in mail.text and "« Foin »" in mail.text
    # The next day, nothing new: no digest.
    assert notifications.queue_digests(wsession, NotifyMode.daily, now + timedelta(days=1)) == 0
