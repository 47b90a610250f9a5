"""Accounts: creation, password hashing (argon2) and checking."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Firm, Role, User
from . import validation as v

hasher = PasswordHasher()  # argon2id with the library's current (RFC 9106 low-memory) parameters

MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    return hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    try:
        return hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def find_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def validate_password(value: object) -> str:
    if not isinstance(value, str) or len(value) < MIN_PASSWORD:
        raise v.FieldError(_l("The password needs at least %(n)s characters.", n=MIN_PASSWORD))
    if len(value) > 200:
        raise v.FieldError(_l("At most %(n)s characters.", n=200))
    return value


def create_user(
    session: Session,
    *,
    email: object,
    password: object,
    role: object = Role.member,
    firm: Firm | None = None,
    name: object = None,
    prefix: str = "",
    password_hash: str | None = None,
    confirmed: bool = True,
    claimant: bool = False,
) -> User:
    """Validate and add a user; `prefix` names the fields in error messages (e.g. "user.").

    `password_hash`, when given, is an argon2 hash of `password` already made: accounts created
    together with one shared password (the demo's) need not spend a tenth of a second each.
    `confirmed` False leaves the e-mail address to be confirmed (self-registration); `claimant`
    lets a member wait without a firm while the CCMA checks the firm they claim."""
    errors = v.Collector()
    clean_email = errors.check(prefix + "email", v.email, email)
    clean_password = errors.check(prefix + "password", validate_password, password)
    clean_name = errors.check(prefix + "name", v.text, name, max_length=120)
    clean_role = errors.check(
        prefix + "role", v.choice, role, {r.value: r.value for r in Role}, _l("Unknown role.")
    )
    if clean_email and find_by_email(session, clean_email):
        errors.add(prefix + "email", _l("An account already uses this e-mail address."))
    if clean_role == Role.member and firm is None and not claimant:
        errors.add(prefix + "role", _l("A member belongs to a firm."))
    errors.raise_if_any()
    user = User(
        email=clean_email,
        password_hash=password_hash or hash_password(clean_password),
        name=clean_name or None,
        role=Role(clean_role),
        firm=firm,
    )
    session.add(user)
    session.flush()
    if not confirmed:
        # After the insert: an explicit None at creation would give way to the column's default.
        user.email_confirmed_at = None
        session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = find_by_email(session, email)
    if user is None or not user.active:
        hasher.hash(password)  # spend the same time whether or not the account exists
        return None
    if not check_password(user, password):
        return None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user
