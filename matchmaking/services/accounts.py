"""Accounts on the web: registration, server-side sign-in sessions and password resets.

A browser holds only a random secret; the database keeps its sha256 as the session id, so a stolen
database reveals no usable cookie and signing out really ends the session on the server.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..models import PasswordReset, Role, User, UserSession, utcnow
from . import firms, users, verification
from . import sign_in as guard
from . import validation as v
from .errors import ValidationError

SESSION_DAYS = 30
IDLE_DAYS = 14
TOUCH_EVERY = timedelta(minutes=5)  # last_seen_at is refreshed at most this often (one write, not one per page)
RESET_HOURS = 2
SECRET_BYTES = 32


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- registration ------------------------------------------------------------------------------


class SiretTaken(ValidationError):
    """The SIRET belongs to a firm already registered: the form offers to file a claim instead."""


def register(session: Session, firm_data: Mapping[str, Any], user_data: Mapping[str, Any], *,
             confirm_link: Callable[[str], str], secret_key: str, claim: bool = False,
             claim_message: object = None, hours: int = verification.CONFIRM_HOURS) -> User:
    """A firm, its main site and its first member, with every field's problem reported at once;
    the new account is e-mailed a link to confirm its address.

    When a firm already holds the SIRET, SiretTaken is raised, unless `claim`: then the account is
    made without a firm and a claim on that firm waits for the CCMA (services/verification.py).
    Errors are keyed "firm_<field>" and "user_<field>". On error the caller rolls back.
    """
    errors = v.Collector()
    taken = verification.firm_by_siret(session, firm_data.get("siret"))
    if taken is not None:
        return _register_claimant(session, taken, user_data, claim=claim, message=claim_message,
                                  confirm_link=confirm_link, secret_key=secret_key, hours=hours)
    email, password = _user_part(session, user_data, errors)
    data = dict(firm_data)
    # The first user is the firm's contact unless the form says otherwise.
    if not data.get("contact_email"):
        data["contact_email"] = email or ""
    if not data.get("contact_name"):
        data["contact_name"] = user_data.get("name") or ""
    firm = None
    try:
        firm = firms.register_firm(session, data, prefix="firm_")
    except ValidationError as exc:
        for field, message in exc.errors.items():
            errors.add(field, message)
    errors.raise_if_any()
    assert firm is not None
    user = users.create_user(
        session, email=email, password=password, role=Role.member, firm=firm,
        name=user_data.get("name") or None, prefix="user_", confirmed=False,
    )
    verification.send_confirmation(session, user, link_for=confirm_link, secret_key=secret_key, hours=hours)
    return user


def _user_part(session: Session, user_data: Mapping[str, Any], errors: v.Collector) -> tuple[Any, Any]:
    email = errors.check("user_email", v.email, user_data.get("email"))
    password = errors.check("user_password", users.validate_password, user_data.get("password"))
    errors.check("user_name", v.text, user_data.get("name"), max_length=120)
    if password and user_data.get("password_confirm") != password:
        errors.add("user_password_confirm", _l("The two passwords differ."))
    if email and users.find_by_email(session, email):
        errors.add("user_email", _l("An account already uses this e-mail address."))
    return email, password


def _register_claimant(session: Session, firm: Any, user_data: Mapping[str, Any], *, claim: bool, message: object,
                       confirm_link: Callable[[str], str], secret_key: str, hours: int) -> User:
    errors = v.Collector()
    email, password = _user_part(session, user_data, errors)
    if not claim:
        errors.add("firm_siret", _l("This firm is already registered. If you work there, ask the CCMA to check "
                                    "it and add you to the firm: tick the box below and register again."))
        raise SiretTaken(errors.errors)
    text = errors.check("claim_message", v.text, message, max_length=verification.MESSAGE_MAX)
    errors.raise_if_any()
    user = users.create_user(
        session, email=email, password=password, role=Role.member, firm=None,
        name=user_data.get("name") or None, prefix="user_", confirmed=False, claimant=True,
    )
    verification.file_claim(session, user, firm, str(text or ""))
    verification.send_confirmation(session, user, link_for=confirm_link, secret_key=secret_key, hours=hours)
    return user


# --- sessions ----------------------------------------------------------------------------------


def start_session(
    session: Session, user: User, *, ip: str | None = None, user_agent: str | None = None
) -> tuple[str, UserSession]:
    """A new signed-in session; returns the secret for the cookie (never stored) and the row."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    row = UserSession(
        id=digest(secret), user=user, ip=(ip or "")[:45] or None, user_agent=(user_agent or "")[:200] or None,
        created_at=utcnow(), last_seen_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return secret, row


def load_session(
    session: Session, secret: str | None, *, now: datetime | None = None,
    max_days: int = SESSION_DAYS, idle_days: int = IDLE_DAYS,
) -> UserSession | None:
    """The live session behind a cookie secret, or None (unknown, revoked, expired, inactive user)."""
    if not secret or len(secret) > 100:
        return None
    row = session.get(UserSession, digest(secret))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    now = now or utcnow()
    if now - row.created_at > timedelta(days=max_days) or now - row.last_seen_at > timedelta(days=idle_days):
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
    return row


def end_session(session: Session, secret: str | None) -> bool:
    """Sign out: the row is revoked, so the cookie is worthless even if it was copied."""
    if not secret or len(secret) > 100:
        return False
    row = session.get(UserSession, digest(secret))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    session.flush()
    return True


def end_all_sessions(session: Session, user: User, *, keep: str | None = None) -> int:
    """Revoke every live session of a user (password changed), except the one with id `keep`."""
    query = (
        update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if keep:
        query = query.where(UserSession.id != keep)
    result = session.execute(query)
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


def sign_in(session: Session, email: object, password: object, *, address: str | None = None,
            policy: guard.Policy | None = None) -> User:
    """The user behind these credentials, or a ValidationError that says nothing about which was wrong.

    Checked under the sign-in policy (services/sign_in.py): raises sign_in.Delayed while this address
    must wait for this account. A wrong password is counted and flushed: the caller commits it."""
    if not isinstance(email, str) or not isinstance(password, str) or not email.strip() or not password:
        errors = v.Collector()
        if not isinstance(email, str) or not email.strip():
            errors.add("email", _l("This field is required."))
        if not isinstance(password, str) or not password:
            errors.add("password", _l("This field is required."))
        errors.raise_if_any()
    assert isinstance(email, str) and isinstance(password, str)
    user = guard.attempt(session, email[:254], password[:200], address=address, policy=policy)
    if user is None:
        raise ValidationError({"password": _l("Wrong e-mail address or password.")})
    return user


# --- mail --------------------------------------------------------------------------------------


def send_mail(session: Session, *, to: str, subject: str, text: str, key: str) -> None:
    """Hand an account e-mail to the delivery service (SMTP through the outbox, or the local mailbox)."""
    from . import delivery

    delivery.send_mail(session, to=to, subject=subject, text=text, key=key)


# --- password reset ----------------------------------------------------------------------------


def request_password_reset(
    session: Session, email: object, *, link_for: Callable[[str], str], hours: int = RESET_HOURS
) -> PasswordReset | None:
    """E-mail a one-time link to the account's owner.

    Answers the same (None, no error) for an unknown address, so the form reveals no account.
    """
    clean = v.Collector().check("email", v.email, email)
    if not clean:
        raise ValidationError({"email": _l("This e-mail address is not valid.")})
    user = users.find_by_email(session, clean)
    if user is None or not user.active:
        return None
    token = secrets.token_urlsafe(SECRET_BYTES)
    now = utcnow()
    reset = PasswordReset(user=user, token_hash=digest(token), created_at=now, expires_at=now + timedelta(hours=hours))
    session.add(reset)
    session.flush()
    with force_locale(user.locale or "fr"):
        subject = gettext("Reset your password")
        text = gettext(
            "Hello,\n\nSomeone (probably you) asked to reset the password of the account %(email)s "
            "on the materials exchange of the Mont des Avaloirs.\n\n"
            "To choose a new password, open this link within %(hours)s hours:\n%(link)s\n\n"
            "If you did not ask for it, ignore this message: your password does not change.\n",
            email=user.email, hours=hours, link=link_for(token),
        )
    send_mail(session, to=user.email, subject=subject, text=text, key=f"password-reset-{reset.id}")
    return reset


def find_reset(session: Session, token: str | None, *, now: datetime | None = None) -> PasswordReset | None:
    """The pending reset behind a link's token, or None when unknown, used or expired."""
    if not token or len(token) > 100:
        return None
    reset = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == digest(token)))
    if reset is None or reset.used_at is not None or (now or utcnow()) > reset.expires_at:
        return None
    return reset


def reset_password(session: Session, token: str | None, password: object, confirm: object) -> User:
    """Set a new password from a reset link; the link then stops working and every session ends."""
    reset = find_reset(session, token)
    if reset is None:
        raise ValidationError({"token": _l("This link is no longer valid. Ask for a new one.")})
    errors = v.Collector()
    clean = errors.check("password", users.validate_password, password)
    if clean and confirm != clean:
        errors.add("password_confirm", _l("The two passwords differ."))
    errors.raise_if_any()
    user = reset.user
    user.password_hash = users.hash_password(str(clean))
    now = utcnow()
    # Every pending link of this user dies with the one used.
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    end_all_sessions(session, user)
    guard.forgive(session, user.email)  # whoever guessed at it, the owner is back in
    session.flush()
    return user


def change_password(session: Session, user: User, current: object, new: object, confirm: object,
                    *, keep_session: str | None = None) -> None:
    """Change a signed-in user's password; other browsers are signed out."""
    errors = v.Collector()
    if not isinstance(current, str) or not users.check_password(user, current):
        errors.add("current_password", _l("This is not your current password."))
    clean = errors.check("password", users.validate_password, new)
    if clean and confirm != clean:
        errors.add("password_confirm", _l("The two passwords differ."))
    errors.raise_if_any()
    user.password_hash = users.hash_password(str(clean))
    end_all_sessions(session, user, keep=keep_session)
