"""Who is who: confirmed e-mail addresses, claims on a SIRET already registered, firms the CCMA checked.

- An account that registered itself starts with an unconfirmed address. It may sign in, fill in its
  firm and keep drafts, but `is_confirmed` — the one gate — keeps it from publishing listings and
  from receiving match e-mails until the link e-mailed to it is opened. The link is signed and
  expires (itsdangerous, keyed on SECRET_KEY); it names the account and its address, so it
  confirms nothing else, and stops working when the address changes.
- Whoever registers with a SIRET that a firm already holds files a claim instead of being turned
  away. CCMA facilitators accept it (the claimant becomes a member of the firm, whose members are
  told) or reject it; both leave an audit row.
- A facilitator marks a firm "verified by the CCMA" (and may take the mark back). The mark is part
  of the firm's identity: it is shown wherever the firm is named, so never on an anonymous listing
  (services/visibility.py builds the firm's view only when its identity may be seen).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..models import ClaimStatus, Firm, FirmClaim, Role, User, utcnow
from . import audit
from . import validation as v
from .errors import Conflict, DomainError, NotFound, ValidationError

CONFIRM_SALT = "email-confirmation"
CONFIRM_HOURS = 48
MESSAGE_MAX = 1000
NOTE_MAX = 500

EMAIL_CONFIRMED = "account.email_confirmed"
CLAIM_FILED = "firm.claim_filed"
CLAIM_ACCEPTED = "firm.claim_accepted"
CLAIM_REJECTED = "firm.claim_rejected"
FIRM_VERIFIED = "firm.verified"
FIRM_UNVERIFIED = "firm.unverified"


class Unconfirmed(DomainError):
    """The account's e-mail address is not confirmed yet: it may not do this."""

    def __init__(self) -> None:
        super().__init__(_l("Confirm your e-mail address first: open the link we sent you, or ask for a new one "
                            "from your account page."))

    @property
    def message(self) -> Any:
        return self.args[0]


class LinkExpired(NotFound):
    """A genuine confirmation link, but too old."""


# --- the gate ----------------------------------------------------------------------------------


def is_confirmed(user: User | None) -> bool:
    """May this account publish listings and receive match e-mails? Only with a confirmed address."""
    return user is not None and user.email_confirmed_at is not None


def require_confirmed(user: User | None) -> None:
    if not is_confirmed(user):
        raise Unconfirmed()


# --- confirming an address ---------------------------------------------------------------------


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=CONFIRM_SALT)


def confirmation_token(user: User, secret_key: str) -> str:
    return str(_serializer(secret_key).dumps([user.id, user.email.lower()]))


def send_confirmation(session: Session, user: User, *, link_for: Callable[[str], str], secret_key: str,
                      hours: int = CONFIRM_HOURS) -> None:
    """E-mail the account its confirmation link, through the delivery service (the outbox)."""
    from . import accounts

    link = link_for(confirmation_token(user, secret_key))
    with force_locale(user.locale or "fr"):
        subject = gettext("Confirm your e-mail address")
        text = gettext(
            "Hello,\n\nYou registered %(email)s on the materials exchange of the Mont des Avaloirs.\n\n"
            "To confirm this address, open this link within %(hours)s hours:\n%(link)s\n\n"
            "Until then you can prepare your listings, but not publish them, and you receive no e-mail "
            "about matches.\n\nIf you did not register, ignore this message.\n",
            email=user.email, hours=hours, link=link,
        )
    accounts.send_mail(session, to=user.email, subject=subject, text=text,
                       key=f"email-confirm-{user.id}-{secrets.token_hex(4)}")


def confirm_email(session: Session, token: str | None, *, secret_key: str, viewer: User | None = None,
                  hours: int = CONFIRM_HOURS) -> User:
    """Confirm the address a link was sent to. A link works only for its own account: signed in as
    someone else, or tampered with, it is NotFound; too old, it is LinkExpired (a NotFound)."""
    if not token or len(token) > 300:
        raise NotFound("confirmation link")
    try:
        data = _serializer(secret_key).loads(token, max_age=hours * 3600)
    except SignatureExpired:
        raise LinkExpired("confirmation link expired") from None
    except BadSignature:
        raise NotFound("confirmation link") from None
    if not (isinstance(data, list) and len(data) == 2 and isinstance(data[0], int) and isinstance(data[1], str)):
        raise NotFound("confirmation link")
    user = session.get(User, data[0])
    if user is None or not user.active or user.email.lower() != data[1]:
        raise NotFound("confirmation link")
    if viewer is not None and viewer.id != user.id:
        raise NotFound("confirmation link")
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
        audit.record(session, user, EMAIL_CONFIRMED, "user", user.id)
        session.flush()
    return user


# --- claims on a SIRET -------------------------------------------------------------------------


def firm_by_siret(session: Session, value: object) -> Firm | None:
    """The firm already registered with this SIRET (as typed: spaces allowed), if any."""
    try:
        siret = v.siret(value)
    except v.FieldError:
        return None
    return session.scalar(select(Firm).where(Firm.siret == siret)) if siret else None


def clean_message(value: object, field: str = "claim_message") -> str:
    errors = v.Collector()
    text = errors.check(field, v.text, value, max_length=MESSAGE_MAX)
    errors.raise_if_any()
    return str(text or "")


def file_claim(session: Session, user: User, firm: Firm, message: str = "") -> FirmClaim:
    claim = FirmClaim(firm=firm, user=user, message=message, status=ClaimStatus.pending)
    session.add(claim)
    session.flush()
    audit.record(session, user, CLAIM_FILED, "firm", firm.id, claim_id=claim.id)
    return claim


def claims_of(session: Session, user: User) -> list[FirmClaim]:
    return list(session.scalars(
        select(FirmClaim).where(FirmClaim.user_id == user.id).order_by(FirmClaim.id.desc())
    ))


def pending_claims(session: Session) -> list[FirmClaim]:
    return list(session.scalars(
        select(FirmClaim).where(FirmClaim.status == ClaimStatus.pending)
        .options(selectinload(FirmClaim.firm).selectinload(Firm.users), selectinload(FirmClaim.user))
        .order_by(FirmClaim.created_at, FirmClaim.id)
    ))


def recent_decisions(session: Session, limit: int = 20) -> list[FirmClaim]:
    return list(session.scalars(
        select(FirmClaim).where(FirmClaim.status != ClaimStatus.pending)
        .order_by(FirmClaim.decided_at.desc(), FirmClaim.id.desc()).limit(limit)
    ))


def get_claim(session: Session, claim_id: int) -> FirmClaim:
    claim = session.get(FirmClaim, claim_id)
    if claim is None:
        raise NotFound(f"claim {claim_id}")
    return claim


def _pending(claim: FirmClaim) -> None:
    if claim.status is not ClaimStatus.pending:
        raise Conflict(_l("This request has already been decided."))


def _tell(session: Session, to: User, subject: Any, text: Any, key: str) -> None:
    """One account e-mail; `subject` and `text` are lazy strings, read in the recipient's language."""
    from . import accounts

    with force_locale(to.locale or "fr"):
        accounts.send_mail(session, to=to.email, subject=str(subject), text=str(text), key=f"{key}-{to.id}")


def accept_claim(session: Session, claim: FirmClaim, staff: User) -> FirmClaim:
    """The claimant joins the firm as a member; the firm's members and the claimant are told."""
    _pending(claim)
    claimant, firm = claim.user, claim.firm
    if claimant.firm_id is not None and claimant.firm_id != firm.id:
        raise Conflict(_l("This account already belongs to another firm."))
    members = [u for u in firm.users if u.active and u.id != claimant.id]
    claimant.firm = firm
    claimant.role = Role.member
    claim.status = ClaimStatus.accepted
    claim.decided_at = utcnow()
    claim.decided_by_id = staff.id
    session.flush()
    audit.record(session, staff, CLAIM_ACCEPTED, "firm", firm.id, claim_id=claim.id, user_id=claimant.id)
    for member in members:
        _tell(session, member, _l("A new member joined your firm"),
              _l("Hello,\n\n%(person)s (%(email)s) asked to join %(firm)s on the materials exchange of the "
                 "Mont des Avaloirs. The CCMA checked the request and accepted it: this person can now "
                 "publish and answer matches for your firm.\n\nIf you do not know this person, tell the CCMA's "
                 "facilitators at once.\n",
                 person=claimant.name or claimant.email, email=claimant.email, firm=firm.name),
              f"claim-{claim.id}-member")
    _tell(session, claimant, _l("You are now a member of %(firm)s", firm=firm.name),
          _l("Hello,\n\nThe CCMA accepted your request: your account is now a member of %(firm)s.\n",
             firm=firm.name),
          f"claim-{claim.id}-claimant")
    return claim


def reject_claim(session: Session, claim: FirmClaim, staff: User, note: object = None) -> FirmClaim:
    _pending(claim)
    errors = v.Collector()
    clean = errors.check("note", v.text, note, max_length=NOTE_MAX)
    errors.raise_if_any()
    claim.status = ClaimStatus.rejected
    claim.decided_at = utcnow()
    claim.decided_by_id = staff.id
    claim.decision_note = clean or None
    session.flush()
    audit.record(session, staff, CLAIM_REJECTED, "firm", claim.firm_id, claim_id=claim.id, user_id=claim.user_id)
    _tell(session, claim.user, _l("Your request to join a firm"),
          _l("Hello,\n\nThe CCMA could not confirm that you belong to %(firm)s, so your request is declined. "
             "If you think this is a mistake, contact the CCMA's facilitators.\n", firm=claim.firm.name),
          f"claim-{claim.id}-claimant")
    return claim


# --- "verified by the CCMA" --------------------------------------------------------------------


def set_verified(session: Session, firm: Firm, staff: User, verified: object) -> Firm:
    if not isinstance(verified, bool):
        raise ValidationError({"verified": _l("Expected true or false.")})
    if verified == firm.verified:
        return firm
    firm.verified_at = utcnow() if verified else None
    audit.record(session, staff, FIRM_VERIFIED if verified else FIRM_UNVERIFIED, "firm", firm.id)
    session.flush()
    return firm
