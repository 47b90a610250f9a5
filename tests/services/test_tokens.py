import hashlib
from datetime import timedelta

from sqlalchemy import select

from matchmaking.models import ApiToken, utcnow
from matchmaking.services import tokens
from tests.factories import make_firm, make_user


def test_a_token_is_stored_as_its_hash_and_stands_for_its_user(session) -> None:
    user = make_user(session, make_firm(session))
    token = tokens.issue(session, user, "script")
    row = session.scalar(select(ApiToken))
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in row.token_hash
    assert tokens.authenticate(session, token) is user
    assert tokens.authenticate(session, token + "x") is None
    assert tokens.authenticate(session, "") is None


def test_use_is_recorded_coarsely(session) -> None:
    user = make_user(session, make_firm(session))
    token = tokens.issue(session, user)
    tokens.authenticate(session, token)
    row = session.scalar(select(ApiToken))
    first = row.last_used_at
    assert first is not None
    assert tokens.touch(row) is False
    row.last_used_at = utcnow() - tokens.TOUCH_EVERY - timedelta(seconds=1)
    assert tokens.touch(row) is True and row.last_used_at > first


def test_revoked_tokens_and_disabled_accounts_open_nothing(session) -> None:
    user = make_user(session, make_firm(session))
    one, two, three = (tokens.issue(session, user) for _ in range(3))
    assert tokens.revoke(session, one) is True and tokens.revoke(session, one) is False
    assert tokens.authenticate(session, one) is None and tokens.authenticate(session, two) is user
    assert tokens.revoke_all(session, user) == 2
    assert tokens.authenticate(session, three) is None
    fresh = tokens.issue(session, user)
    user.active = False
    assert tokens.authenticate(session, fresh) is None


def test_a_token_left_unused_for_half_a_year_stops_working(session) -> None:
    user = make_user(session, make_firm(session))
    used, never = tokens.issue(session, user), tokens.issue(session, user)
    rows = {row.token_hash: row for row in session.scalars(select(ApiToken))}
    long_ago = utcnow() - timedelta(days=tokens.IDLE_DAYS + 1)
    rows[tokens.hash_token(used)].last_used_at = utcnow() - timedelta(days=tokens.IDLE_DAYS - 1)
    rows[tokens.hash_token(never)].created_at = long_ago
    session.flush()
    assert tokens.authenticate(session, used) is user  # ... and its clock starts again
    assert tokens.authenticate(session, never) is None
    rows[tokens.hash_token(used)].last_used_at = long_ago
    assert tokens.authenticate(session, used) is None
