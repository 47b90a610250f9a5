"""E-mails (templates, headers, SMTP, local mailbox) and webhooks (signature, address checks, 410)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from matchmaking.models import MailboxMessage, Match, Notification, OutboxEvent, Role, WebhookEndpoint
from matchmaking.services import delivery, notifications, preferences
from matchmaking.services.errors import ValidationError
from matchmaking.services.relay import GiveUp, RetryLater
from tests.factories import make_listing, make_user
from tests.workers.harness import SECRET, SmtpSink, WebhookReceiver


def _notified(session: Any, firms: Any, fake_engine: None = None) -> list[Notification]:
    make_listing(session, firms["seller"], title="Sciure de hêtre")
    make_listing(session, firms["buyer"], kind="need", title="Sciure de hêtre")
    session.flush()
    from tests.workers.fake_engine import fake_refresh

    need = session.scalars(select(OutboxEvent).where(OutboxEvent.kind == "listing.changed")).all()[-1]
    ((match, _),) = fake_refresh(session, need.payload["listing_id"])
    made = notifications.notify_match(session, match)
    session.commit()
    return made


def _settings(**overrides: Any) -> delivery.Settings:
    base = delivery.Settings(sender="Matières <ne-pas-repondre@avaloirs.example.fr>", base_url="https://mm.example.fr",
                             secret_key="k")
    return delivery.Settings(**(base.__dict__ | overrides))


def test_notification_email_in_the_recipients_language(wsession: Any, firms: Any) -> None:
    firms["buyer_user"].locale = "en"
    made = _notified(wsession, firms)
    by_user = {n.user_id: n for n in made}
    fr = delivery.notification_email(by_user[firms["seller_user"].id], _settings())
    en = delivery.notification_email(by_user[firms["buyer_user"].id], _settings())
    notice = by_user[firms["seller_user"].id]
    assert fr["Message-ID"] == f"<notification-{notice.id}@avaloirs.example.fr>"
    assert fr["List-Unsubscribe"].startswith("<https://mm.example.fr/notifications/desabonnement/")
    assert fr["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Sciure de hêtre" in fr["Subject"] and "Nouvelle" in fr["Subject"]
    assert en["Subject"].startswith("New match")
    text = fr.get_body(("plain",)).get_content()
    html = fr.get_body(("html",)).get_content()
    assert f"https://mm.example.fr/matches/{notice.match.public_id}" in text and "<a href" in html
    assert "80 %" in text and "Scierie" not in text + html  # the other firm is never named


def test_smtp_delivery_and_retry_classification(wsession: Any, firms: Any) -> None:
    (notice, _) = _notified(wsession, firms)
    sink = SmtpSink().start()
    try:
        settings = _settings(smtp_host="127.0.0.1", smtp_port=sink.port, smtp_tls="none", smtp_timeout=5)
        delivery.send(wsession, delivery.notification_email(notice, settings), settings)
        assert sink.received == [(f"<notification-{notice.id}@avaloirs.example.fr>", notice.user.email)]
    finally:
        sink.stop()
    with pytest.raises(RetryLater):  # server gone: try later
        delivery.send(wsession, delivery.notification_email(notice, settings), settings)


def test_mailbox_keeps_one_copy_per_message_id(wsession: Any, firms: Any) -> None:
    (notice, _) = _notified(wsession, firms)
    settings = _settings()
    for _ in range(2):
        delivery.send(wsession, delivery.notification_email(notice, settings), settings)
    assert wsession.query(MailboxMessage).count() == 1


def test_send_mail_goes_to_the_mailbox_or_the_outbox(wsession: Any, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    delivery.send_mail(wsession, to="a@example.fr", subject="Réinitialisation", text="Lien", key="reset-1")
    assert wsession.scalar(select(MailboxMessage.subject)) == "Réinitialisation"
    monkeypatch.setitem(app.config, "SMTP_HOST", "smtp.example.fr")
    delivery.send_mail(wsession, to="a@example.fr", subject="Réinitialisation", text="Lien", key="reset-2")
    row = wsession.scalar(select(OutboxEvent).where(OutboxEvent.kind == "deliver.mail"))
    assert row.idempotency_key == "mail:reset-2" and row.payload["to"] == "a@example.fr"


def test_signature_follows_standard_webhooks() -> None:
    # The specification's published example.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert delivery.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert delivery.new_secret().startswith("whsec_")


@pytest.mark.parametrize("url", ["http://127.0.0.1/h", "http://10.1.2.3/h", "http://169.254.169.254/latest",
                                 "http://[::1]/h", "http://192.168.1.10/h", "http://[::ffff:127.0.0.1]/h",
                                 "http://[64:ff9b::7f00:1]/h", "http://[64:ff9b::a9fe:a9fe]/h",
                                 "http://[64:ff9b:1::a00:1]/h", "http://[2002:7f00:1::1]/h",
                                 "http://[2002:c0a8:10a::1]/h", "http://[::127.0.0.1]/h", "http://[::a01:203]/h",
                                 "ftp://example.fr/h"])
def test_private_and_local_addresses_are_refused(url: str) -> None:
    with pytest.raises(GiveUp):
        delivery.resolve_target(url, allow_private=False)


@pytest.mark.parametrize("raw", ["64:ff9b::5db8:d822", "2002:5db8:d822::1", "2a00:1450:4007:80e::200e"])
def test_ipv6_forms_of_public_addresses_stay_allowed(raw: str) -> None:
    assert delivery._allowed_ip(raw)


def test_private_addresses_allowed_when_configured() -> None:
    assert delivery.resolve_target("http://127.0.0.1:8080/h", allow_private=True)[3] == "127.0.0.1"


def test_endpoint_registration_checks_the_address(wsession: Any, firms: Any) -> None:
    with pytest.raises(ValidationError):
        delivery.create_endpoint(wsession, firms["buyer"], "http://127.0.0.1/hook", allow_private=False)
    endpoint = delivery.create_endpoint(wsession, firms["buyer"], "http://127.0.0.1/hook", allow_private=True)
    assert endpoint.secret.startswith("whsec_") and endpoint.active


def test_webhook_delivery_signs_retries_and_stops_on_410(wsession: Any, firms: Any) -> None:
    made = _notified(wsession, firms)
    notice = next(n for n in made if n.user_id == firms["buyer_user"].id)
    receiver = WebhookReceiver().start()
    try:
        endpoint = WebhookEndpoint(firm_id=firms["buyer"].id, url=receiver.url, secret=SECRET)
        wsession.add(endpoint)
        wsession.commit()
        settings = _settings(webhook_allow_private=True, webhook_timeout=3)
        assert delivery.deliver_webhook(wsession, notice.id, endpoint.id, settings) == "HTTP 200"
        assert receiver.requests == [(f"msg_{notice.id}", 200)] and receiver.bad_signatures == 0

        receiver.status_for = lambda n: 500
        with pytest.raises(RetryLater):
            delivery.deliver_webhook(wsession, notice.id, endpoint.id, settings)
        receiver.status_for = lambda n: 410
        assert "disabled" in delivery.deliver_webhook(wsession, notice.id, endpoint.id, settings)
        assert not endpoint.active and "410" in (endpoint.disabled_reason or "")
        assert "disabled" in delivery.deliver_webhook(wsession, notice.id, endpoint.id, settings)
        assert len(receiver.requests) == 3
        with pytest.raises(GiveUp):  # loopback refused unless allowed
            endpoint.active = True
            delivery.deliver_webhook(wsession, notice.id, endpoint.id, _settings())
    finally:
        receiver.stop()


def test_webhook_body_describes_the_match_from_the_firms_side(wsession: Any, firms: Any) -> None:
    made = _notified(wsession, firms)
    notice = next(n for n in made if n.user_id == firms["buyer_user"].id)
    body = json.loads(json.dumps(delivery.webhook_body(notice, _settings())))
    assert body["type"] == "match.found"
    assert body["data"]["match_id"] == notice.match.public_id and body["data"]["listing_title"] == "Sciure de hêtre"
    assert body["data"]["url"].endswith(f"/matches/{notice.match.public_id}")
    assert wsession.get(Match, notice.match_id) is not None


def test_digest_lists_the_notices(wsession: Any, firms: Any) -> None:
    from matchmaking.models import NotifyMode

    firms["buyer_user"].notify_mode = NotifyMode.weekly
    _notified(wsession, firms)
    assert notifications.queue_digests(wsession, NotifyMode.weekly) == 1
    wsession.commit()
    row = wsession.scalar(select(OutboxEvent).where(OutboxEvent.kind == "deliver.digest"))
    message = delivery.digest_email(wsession, firms["buyer_user"], row.payload["notification_ids"], "weekly", row.id,
                                    _settings())
    assert message is not None and "semaine" in message.get_body(("plain",)).get_content()
    assert message["Message-ID"] == f"<digest-{row.id}@avaloirs.example.fr>"


def test_preferences_are_validated_and_saved(wsession: Any, firms: Any) -> None:
    user = firms["buyer_user"]
    assert preferences.update_preferences(wsession, user, {"mode": "daily", "min_score": "0,7", "webhook": "non"}) \
        == {"mode": "daily", "min_score": 0.7, "email": True, "webhook": False}
    with pytest.raises(ValidationError) as caught:
        preferences.update_preferences(wsession, user, {"mode": "hourly", "min_score": 2})
    assert set(caught.value.errors) == {"mode", "min_score"}
    assert preferences.get_preferences(user)["mode"] == "daily"


def test_unsubscribe_link_stops_emails(wsession: Any, firms: Any, client: Any, app: Any) -> None:
    user = firms["buyer_user"]
    wsession.commit()
    token = preferences.unsubscribe_token(user, app.config["SECRET_KEY"])
    assert client.get(f"/notifications/desabonnement/{token}").status_code == 200
    assert client.post(f"/notifications/desabonnement/{token}").status_code == 200
    wsession.refresh(user)
    assert user.notify_email is False
    assert client.post("/notifications/desabonnement/forged").status_code == 404


def test_mailbox_shows_own_messages_and_all_to_admins(wsession: Any, firms: Any) -> None:
    for to in ("achat@elevage.example.fr", "vente@scierie.example.fr"):
        wsession.add(MailboxMessage(message_id=f"<{to}>", to=to, subject="S", text="T"))
    admin = make_user(wsession, None, email="admin@ccma.example.fr", role=Role.admin.value)
    wsession.flush()
    assert [m.to for m in delivery.mailbox_for(wsession, firms["buyer_user"])] == ["achat@elevage.example.fr"]
    assert len(delivery.mailbox_for(wsession, admin)) == 2
    assert delivery.mailbox_for(wsession, None) == []


def test_the_mailbox_page_needs_a_signed_in_user(client: Any) -> None:
    response = client.get("/boite-mail")
    assert response.status_code in (302, 401, 404)
    assert b"<pre" not in response.data


def test_the_mailbox_page_shows_the_signed_in_users_messages(wsession: Any, firms: Any, client: Any,
                                                             app: Any) -> None:
    from matchmaking.services import accounts

    wsession.add(MailboxMessage(message_id="<a>", to="achat@elevage.example.fr", subject="Pour l'acheteur", text="A"))
    wsession.add(MailboxMessage(message_id="<b>", to="vente@scierie.example.fr", subject="Pour le vendeur", text="B"))
    secret, _ = accounts.start_session(wsession, firms["buyer_user"])
    wsession.commit()
    client.set_cookie(app.config["LOGIN_COOKIE_NAME"], secret)
    page = client.get("/boite-mail").get_data(as_text=True)
    assert "Pour l&#39;acheteur" in page and "Pour le vendeur" not in page
