"""Bearer tokens for the JSON API. Only a sha256 of each token is stored, so a leaked database
does not hand out working tokens; the token itself is shown once, when it is issued."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..models import ApiToken, User, utcnow

PREFIX = "mmk_"  # lets secret scanners and people recognise a leaked token
# Refresh last_used_at at most this often, so reads do not turn into writes.
TOUCH_EVERY = timedelta(minutes=5)
# A token unused this long stops working: the secret of a forgotten integration, or one copied
# into a script years ago, does not stay valid for ever. Anyone using theirs never notices.
IDLE_DAYS = 180


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue(session: Session, user: User, name: str | None = None) -> str:
    """A new token for `user`; returns the only copy of the secret."""
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user=user, token_hash=hash_token(token), name=(name or None) and name[:80]))
    session.flush()
    return token


def find(session: Session, token: str, *, idle_days: int = IDLE_DAYS) -> ApiToken | None:
    """The live token row for `token`, or None when unknown, revoked, idle for `idle_days`, or the
    account is disabled."""
    if not token or len(token) > 200:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    if utcnow() - (row.last_used_at or row.created_at) > timedelta(days=idle_days):
        return None
    return row


def touch(row: ApiToken) -> bool:
    """Mark the token as used now; True when that changed the row (the caller commits it)."""
    now = utcnow()
    if row.last_used_at is not None and now - row.last_used_at <= TOUCH_EVERY:
        return False
    row.last_used_at = now
    return True


def authenticate(session: Session, token: str) -> User | None:
    """The user a bearer token stands for; marks the token as used (coarsely)."""
    row = find(session, token)
    if row is None:
        return None
    if touch(row):
        session.flush()
    return row.user


def revoke(session: Session, token: str) -> bool:
    """Revoke one token; False when it was unknown or already revoked."""
    row = find(session, token)
    if row is None:
        return False
    row.revoked_at = utcnow()
    session.flush()
    return True


def revoke_all(session: Session, user: User) -> int:
    """Revoke every live token of a user (password change, account disabled)."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)
