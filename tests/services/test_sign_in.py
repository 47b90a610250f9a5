"""The sign-in policy on its own, with the clock handed in: who waits, how long, and what ends a wait.

The same policy seen through the web form and the API, with a proxy in front and a stranger and an
owner at two addresses: tests/reliability/test_sessions_abuse.py.
"""

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from matchmaking.models import SignInRecord, utcnow
from matchmaking.services import sign_in
from matchmaking.services.sign_in import Delayed, Policy, address_key
from tests.factories import PASSWORD, make_firm, make_user

HERE, ELSEWHERE = "203.0.113.7", "198.51.100.8"


@pytest.fixture()
def records(session):
    yield session
    session.rollback()
    session.execute(delete(SignInRecord))
    session.commit()


def guess(session, email: str, when, address: str = HERE, password: str = "wrong password", **policy):
    return sign_in.attempt(session, email, password, address=address, policy=Policy(**policy), now=when)


def test_after_the_free_wrong_passwords_each_one_doubles_the_wait_up_to_the_cap(records) -> None:
    user = make_user(records, make_firm(records))
    now = utcnow()
    for _ in range(5):
        assert guess(records, user.email, now) is None
    waits = []
    for _ in range(7):
        with pytest.raises(Delayed) as delayed:
            guess(records, user.email, now, password=PASSWORD)  # not even the right password is checked
        waits.append(delayed.value.retry_after)
        now += timedelta(seconds=delayed.value.retry_after)  # waited exactly as long as told
        assert guess(records, user.email, now) is None
    assert waits == [30, 60, 120, 240, 480, 900, 900]
    # One second short of the end of a wait is still a wait, and says how long is left.
    with pytest.raises(Delayed) as delayed:
        guess(records, user.email, now + timedelta(seconds=899))
    assert delayed.value.retry_after == 1 and delayed.value.minutes == 1


def test_the_right_password_after_the_wait_clears_the_count_and_makes_the_address_known(records) -> None:
    user = make_user(records, make_firm(records))
    now = utcnow()
    for _ in range(5):
        guess(records, user.email, now)
    later = now + timedelta(seconds=31)
    assert guess(records, user.email, later, password=PASSWORD) is user
    row = records.get(SignInRecord, (sign_in.account_key(user.email), HERE))
    assert row.failures == 0 and row.wait_until is None and row.known_until > later
    assert [guess(records, user.email, later) for _ in range(4)] == [None] * 4  # a fresh allowance


def test_another_address_and_another_account_are_never_held_up(records) -> None:
    user, other = make_user(records, make_firm(records)), make_user(records, make_firm(records))
    now = utcnow()
    for _ in range(5):
        guess(records, user.email, now)
    assert guess(records, user.email, now, address=ELSEWHERE, password=PASSWORD) is user
    assert guess(records, other.email, now, password=PASSWORD) is other


def test_unknown_accounts_are_counted_like_real_ones(records) -> None:
    now = utcnow()
    for _ in range(5):
        assert guess(records, "nobody@example.fr", now) is None
    with pytest.raises(Delayed) as delayed:
        guess(records, "NOBODY@example.fr ", now)
    assert delayed.value.retry_after == 30


def test_an_account_guessed_at_everywhere_gives_unknown_addresses_one_try_and_known_ones_their_allowance(
        records) -> None:
    user = make_user(records, make_firm(records))
    now = utcnow()
    assert guess(records, user.email, now, address=ELSEWHERE, password=PASSWORD) is user  # the owner's office
    for n in range(4):
        for _ in range(5):
            guess(records, user.email, now, address=f"192.0.2.{n}")
    assert guess(records, user.email, now, address="192.0.2.50") is None
    with pytest.raises(Delayed):
        guess(records, user.email, now, address="192.0.2.50")
    assert [guess(records, user.email, now, address=ELSEWHERE) for _ in range(4)] == [None] * 4
    assert guess(records, user.email, now, address=ELSEWHERE, password=PASSWORD) is user


def test_a_password_reset_ends_every_wait_on_the_account(records) -> None:
    user = make_user(records, make_firm(records))
    now = utcnow()
    for address in (HERE, ELSEWHERE):
        for _ in range(5):
            guess(records, user.email, now, address=address)
    sign_in.forgive(records, user.email)
    assert guess(records, user.email, now, password=PASSWORD) is user
    assert guess(records, user.email, now, address=ELSEWHERE, password=PASSWORD) is user


def test_old_wrong_passwords_are_forgotten_and_their_rows_removed(records) -> None:
    user = make_user(records, make_firm(records))
    long_ago = utcnow() - timedelta(days=2)
    for n in range(3):
        guess(records, f"typo{n}@example.fr", long_ago)
    for _ in range(4):
        guess(records, user.email, long_ago)
    now = utcnow()
    assert guess(records, user.email, now) is None  # the fifth, but a day later: the count starts again
    assert records.get(SignInRecord, (sign_in.account_key(user.email), HERE)).failures == 1
    assert records.scalar(select(func.count()).select_from(SignInRecord)) == 1  # the typos are gone


def test_policy_from_the_settings_and_addresses_folded_per_client() -> None:
    policy = Policy.from_config({"SIGN_IN_FREE_FAILURES": 3, "SIGN_IN_FIRST_WAIT_SECONDS": 10,
                                 "SIGN_IN_MAX_WAIT_SECONDS": 25})
    assert [policy.wait_after(n, policy.free_failures) for n in range(1, 7)] == [0, 0, 10, 20, 25, 25]
    assert Policy.from_config({}) == Policy()
    # An IPv6 subscriber has a whole /64: its addresses count as one.
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:203.0.113.7") == "203.0.113.7" == address_key(" 203.0.113.7 ")
    assert address_key(None) == address_key("not an address") == "unknown"
