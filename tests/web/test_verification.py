"""Who is who: a registration confirms its e-mail address before publishing, a second person claims a
SIRET through the CCMA, and firms a facilitator checked are shown "vérifiée par la CCMA"."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select

from matchmaking.models import (
    AuditLog,
    ClaimStatus,
    FirmClaim,
    Listing,
    ListingStatus,
    MailboxMessage,
    OutboxEvent,
    User,
)
from matchmaking.services import delivery, verification
from tests.factories import luhn_siret, make_firm, make_listing, make_user
from tests.web.conftest import PASSWORD, post, sign_in
from tests.web.conftest import text as raw_text

LISTING_FORM = {"kind": "offer", "title": "Palettes cassées", "quantity": "3", "unit": "t", "frequency": "monthly"}
LINK_RE = re.compile(r"http://[^\s]+/account/confirm/[A-Za-z0-9_.\-]+")


def text(response: Any) -> str:
    """The page as a reader sees it (entities such as ' read back as characters)."""
    return html.unescape(raw_text(response))


def _register_form(**overrides: Any) -> dict[str, str]:
    return {
        "firm_name": "Menuiserie Delta", "firm_siret": luhn_siret("8123456780001"), "firm_postal_code": "53700",
        "firm_commune": "Villaines-la-Juhel", "user_name": "Denis Delta", "user_email": "denis@delta.example.fr",
        "user_password": PASSWORD, "user_password_confirm": PASSWORD,
    } | overrides


def _register(client: Any, **overrides: Any) -> Any:
    response = post(client, "/register", _register_form(**overrides))
    assert response.status_code == 302, text(response)[:800]
    return response


def _user(session: Any, email: str) -> User:
    session.expire_all()
    found = session.scalar(select(User).where(User.email == email))
    assert found is not None
    return found


def _link_in_mailbox(session: Any, email: str) -> str:
    session.expire_all()
    mails = session.scalars(select(MailboxMessage).where(MailboxMessage.to == email)
                            .order_by(MailboxMessage.id)).all()
    assert mails, f"no e-mail to {email}"
    found = LINK_RE.search(mails[-1].text)
    assert found, mails[-1].text
    return found.group(0)


def _path(link: str) -> str:
    return "/" + link.split("/", 3)[3]


# --- confirming the e-mail address -------------------------------------------------------------


def test_a_new_account_is_unconfirmed_cannot_publish_and_is_told_what_to_do(client, session) -> None:
    _register(client)
    user = _user(session, "denis@delta.example.fr")
    assert user.email_confirmed_at is None and not verification.is_confirmed(user)
    page = text(client.get("/listings/new"))
    assert "Confirmez votre adresse e-mail" in page and "Renvoyer l'e-mail" in page
    refused = post(client, "/listings/new", LISTING_FORM)
    assert refused.status_code == 403
    assert "Confirmez d'abord votre adresse e-mail" in text(refused)
    session.expire_all()
    assert session.scalar(select(Listing).where(Listing.firm_id == user.firm_id)) is None
    # A draft is fine; publishing it is not.
    draft = post(client, "/listings/new", LISTING_FORM | {"action": "draft"}, form_url="/listings/new")
    assert draft.status_code == 302
    listing = session.scalar(select(Listing).where(Listing.firm_id == user.firm_id))
    assert listing.status is ListingStatus.draft
    post(client, f"/listings/{listing.public_id}/status", {"action": "publish"},
         form_url=f"/listings/{listing.public_id}")
    session.expire_all()
    assert session.get(Listing, listing.id).status is ListingStatus.draft


def test_the_confirmation_link_confirms_the_account_which_may_then_publish(client, session) -> None:
    _register(client)
    link = _link_in_mailbox(session, "denis@delta.example.fr")
    assert link.startswith("http://127.0.0.1:5000/account/confirm/")  # the configured site, not the Host header
    page = client.get(_path(link))
    assert page.status_code == 200 and "Votre adresse e-mail est confirmée" in text(page)
    user = _user(session, "denis@delta.example.fr")
    assert user.email_confirmed_at is not None
    assert session.scalar(select(AuditLog).where(AuditLog.action == verification.EMAIL_CONFIRMED,
                                                 AuditLog.target_id == user.id)) is not None
    assert "Renvoyer l'e-mail" not in text(client.get("/listings/new"))
    assert post(client, "/listings/new", LISTING_FORM).status_code == 302
    listing = session.scalar(select(Listing).where(Listing.firm_id == user.firm_id))
    assert listing.status is ListingStatus.published


def test_the_confirmation_email_goes_through_the_outbox_when_smtp_is_configured(
        client, session, app, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "SMTP_HOST", "smtp.example.fr")
    _register(client)
    session.expire_all()
    assert session.scalar(select(MailboxMessage).where(MailboxMessage.to == "denis@delta.example.fr")) is None
    row = session.scalar(select(OutboxEvent).where(OutboxEvent.kind == "deliver.mail"))
    assert row is not None and row.payload["to"] == "denis@delta.example.fr"
    assert row.payload["subject"] == "Confirmez votre adresse e-mail"
    assert LINK_RE.search(row.payload["text"])
    # The worker carries the row out (here into the local mailbox, as with no SMTP server).
    monkeypatch.setitem(app.config, "SMTP_HOST", None)
    assert delivery.deliver(session, row) == "written to the mailbox"
    session.commit()
    link = _link_in_mailbox(session, "denis@delta.example.fr")
    assert client.get(_path(link)).status_code == 200
    assert _user(session, "denis@delta.example.fr").email_confirmed_at is not None


def test_an_expired_link_is_refused_and_says_so(client, session, monkeypatch: pytest.MonkeyPatch, app) -> None:
    user = make_user(session, make_firm(session))
    user.email_confirmed_at = None
    session.commit()
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 49 * 3600)
        token = verification.confirmation_token(user, app.config["SECRET_KEY"])
    page = client.get(f"/account/confirm/{token}")
    assert page.status_code == 404 and "Ce lien a expiré" in text(page)
    assert _user(session, user.email).email_confirmed_at is None


@pytest.mark.parametrize("tamper", ["flip", "other-key", "garbage"])
def test_a_tampered_link_is_refused(client, session, app, tamper: str) -> None:
    user = make_user(session, make_firm(session))
    user.email_confirmed_at = None
    session.commit()
    token = verification.confirmation_token(user, app.config["SECRET_KEY"])
    if tamper == "flip":
        token = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    elif tamper == "other-key":
        token = verification.confirmation_token(user, "not-the-secret")
    else:
        token = "x" * 40
    page = client.get(f"/account/confirm/{token}")
    assert page.status_code == 404 and "Ce lien ne fonctionne pas" in text(page)
    assert _user(session, user.email).email_confirmed_at is None


def test_a_link_works_only_for_its_own_account(client, session, app) -> None:
    owner = make_user(session, make_firm(session))
    owner.email_confirmed_at = None
    other = make_user(session, make_firm(session))
    other.email_confirmed_at = None
    session.commit()
    token = verification.confirmation_token(owner, app.config["SECRET_KEY"])
    sign_in(client, other)
    assert client.get(f"/account/confirm/{token}").status_code == 404
    assert _user(session, owner.email).email_confirmed_at is None
    assert _user(session, other.email).email_confirmed_at is None
    # A link stops working when the address it was sent to changes.
    owner = _user(session, owner.email)
    owner.email = "nouvelle@example.fr"
    session.commit()
    assert app.test_client().get(f"/account/confirm/{token}").status_code == 404


def test_the_email_can_be_sent_again(client, session) -> None:
    _register(client)
    first = _link_in_mailbox(session, "denis@delta.example.fr")
    response = post(client, "/account/confirm", {"next": "/listings/new"}, form_url="/account")
    assert response.status_code == 302 and response.headers["Location"].endswith("/listings/new")
    assert "Un nouvel e-mail de confirmation part vers denis@delta.example.fr" in text(client.get("/listings/new"))
    session.expire_all()
    assert session.query(MailboxMessage).filter_by(to="denis@delta.example.fr").count() == 2
    assert client.get(_path(first)).status_code == 200  # the first link still works until it expires


def test_existing_and_staff_accounts_count_as_confirmed(session) -> None:
    member = make_user(session, make_firm(session))
    staff = make_user(session, None, role="facilitator")
    assert verification.is_confirmed(member) and verification.is_confirmed(staff)


# --- claiming a SIRET already registered ---------------------------------------------------------


def _holder(session: Any) -> tuple[Any, Any]:
    firm = make_firm(session, name="Scierie du Mont")
    member = make_user(session, firm, email="patron@scierie.example.fr")
    session.commit()
    return firm, member


def test_a_siret_already_registered_offers_to_ask_the_ccma(client, session) -> None:
    firm, _member = _holder(session)
    response = post(client, "/register", _register_form(firm_siret=firm.siret))
    page = text(response)
    assert response.status_code == 422
    assert "Cette entreprise est déjà inscrite" in page and 'name="claim"' in page
    assert 'id="e-firm_siret"' in page
    assert session.scalar(select(User).where(User.email == "denis@delta.example.fr")) is None


def test_a_claim_accepted_by_the_ccma_makes_the_claimant_a_member_and_tells_the_firm(client, session, app) -> None:
    firm, member = _holder(session)
    _register(client, firm_siret=firm.siret, claim="on", claim_message="Je suis le nouveau gérant.")
    claimant = _user(session, "denis@delta.example.fr")
    assert claimant.firm_id is None
    claim = session.scalar(select(FirmClaim).where(FirmClaim.user_id == claimant.id))
    assert claim.firm_id == firm.id and claim.status is ClaimStatus.pending
    assert "en cours de vérification par la CCMA" in text(client.get("/account"))

    staff = make_user(session, None, role="facilitator", email="anim@ccma.example.fr")
    session.commit()
    desk = app.test_client()
    sign_in(desk, staff)
    page = text(desk.get("/staff/claims"))
    assert "denis@delta.example.fr" in page and "Je suis le nouveau gérant." in page and "Scierie du Mont" in page
    response = post(desk, f"/staff/claims/{claim.id}/decision", {"decision": "accept"}, form_url="/staff/claims")
    assert response.status_code == 302
    session.expire_all()
    assert _user(session, "denis@delta.example.fr").firm_id == firm.id
    assert session.get(FirmClaim, claim.id).status is ClaimStatus.accepted
    row = session.scalar(select(AuditLog).where(AuditLog.action == verification.CLAIM_ACCEPTED))
    assert row.actor_id == staff.id and row.target_id == firm.id and row.details["user_id"] == claimant.id
    told = session.scalar(select(MailboxMessage).where(MailboxMessage.to == member.email))
    assert told is not None and "denis@delta.example.fr" in told.text and told.subject.startswith("Une nouvelle")
    # Deciding twice is refused without a 500.
    again = post(desk, f"/staff/claims/{claim.id}/decision", {"decision": "reject"}, form_url="/staff/claims")
    assert again.status_code == 302 and "déjà été traitée" in text(desk.get("/staff/claims"))


def test_a_claim_rejected_by_the_ccma_leaves_the_firm_as_it_was(client, session, app) -> None:
    firm, _member = _holder(session)
    _register(client, firm_siret=firm.siret, claim="on")
    claimant = _user(session, "denis@delta.example.fr")
    claim = session.scalar(select(FirmClaim).where(FirmClaim.user_id == claimant.id))
    staff = make_user(session, None, role="facilitator", email="anim@ccma.example.fr")
    session.commit()
    desk = app.test_client()
    sign_in(desk, staff)
    bad = post(desk, f"/staff/claims/{claim.id}/decision", {"decision": "peut-être"}, form_url="/staff/claims")
    assert bad.status_code == 302 and "Choisissez d'accepter ou de refuser" in text(desk.get("/staff/claims"))
    response = post(desk, f"/staff/claims/{claim.id}/decision", {"decision": "reject", "note": "Inconnu du gérant"},
                    form_url="/staff/claims")
    assert response.status_code == 302
    session.expire_all()
    assert _user(session, "denis@delta.example.fr").firm_id is None
    decided = session.get(FirmClaim, claim.id)
    assert decided.status is ClaimStatus.rejected and decided.decision_note == "Inconnu du gérant"
    assert session.scalar(select(AuditLog).where(AuditLog.action == verification.CLAIM_REJECTED)).actor_id == staff.id
    assert session.scalar(select(MailboxMessage).where(MailboxMessage.to == "denis@delta.example.fr",
                                                       MailboxMessage.subject.like("Votre demande%"))) is not None


def test_a_too_long_claim_message_is_named_in_french(client, session) -> None:
    firm, _member = _holder(session)
    response = post(client, "/register", _register_form(firm_siret=firm.siret, claim="on",
                                                        claim_message="x" * 2000))
    page = text(response)
    assert response.status_code == 422 and 'id="e-claim_message"' in page and "Message à la CCMA" in page


# --- "vérifiée par la CCMA" ----------------------------------------------------------------------


def test_a_firm_marked_verified_shows_the_mark_except_on_its_anonymous_listings(client, session, app,
                                                                                busy_communes) -> None:
    firm = make_firm(session, name="Fonderie Alpha")
    make_user(session, firm)
    named = make_listing(session, firm, title="Chutes de laiton")
    hidden = make_listing(session, firm, title="Copeaux d'acier", anonymous=True)
    viewer = make_user(session, make_firm(session))
    staff = make_user(session, None, role="facilitator", email="anim@ccma.example.fr")
    session.commit()
    sign_in(client, viewer)
    assert "vérifiée par la CCMA" not in text(client.get(f"/listings/{named.public_id}"))

    desk = app.test_client()
    sign_in(desk, staff)
    response = post(desk, f"/staff/firms/{firm.id}/verified", {"verified": "on"}, form_url=f"/staff/firms/{firm.id}")
    assert response.status_code == 302
    assert session.scalar(select(AuditLog).where(AuditLog.action == verification.FIRM_VERIFIED,
                                                 AuditLog.target_id == firm.id)).actor_id == staff.id
    page = text(client.get(f"/listings/{named.public_id}"))
    assert "Fonderie Alpha" in page and "vérifiée par la CCMA" in page
    anonymous = text(client.get(f"/listings/{hidden.public_id}"))
    assert "Fonderie Alpha" not in anonymous and "vérifiée par la CCMA" not in anonymous
    index = text(client.get("/"))
    assert index.count("vérifiée par la CCMA") == 1  # the named listing only

    post(desk, f"/staff/firms/{firm.id}/verified", {}, form_url=f"/staff/firms/{firm.id}")
    assert "vérifiée par la CCMA" not in text(client.get(f"/listings/{named.public_id}"))
    assert session.scalar(select(AuditLog).where(AuditLog.action == verification.FIRM_UNVERIFIED)) is not None


def test_members_cannot_mark_their_own_firm_verified(client, session) -> None:
    firm = make_firm(session)
    member = make_user(session, firm)
    session.commit()
    sign_in(client, member)
    response = post(client, f"/staff/firms/{firm.id}/verified", {"verified": "on"}, form_url="/account")
    assert response.status_code == 404
    session.expire_all()
    assert session.get(type(firm), firm.id).verified_at is None
