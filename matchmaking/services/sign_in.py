"""Signing in with a password: slow down whoever guesses, never the account's owner elsewhere.

One policy, used by the web form and the API's token endpoint alike (attempt()):

* wrong passwords count per account *and* client address. After `free_failures` of them in a row,
  that address waits before its next try at that account: `first_wait` seconds, then twice as long
  after each further wrong password, up to `max_wait`. The wait is answered at once (429 with
  Retry-After); no worker sleeps.
* While an address waits, no password it sends for that account is checked, not even the right one,
  so guessing during the wait is useless. The owner signing in from another address is another pair
  and is not held up; a password reset link lets them in whatever the count.
* An account guessed at from many addresses (`account_alarm` wrong passwords within `forget_hours`,
  all addresses together) gives each address it was never signed in from a single free try; the
  addresses its owner signed in from in the last `known_days` keep the full allowance.
* Each attempt is counted before its password is checked, on a row locked for the transaction, so
  guesses sent in parallel wait their turn like the others.

Unknown e-mail addresses are counted exactly like real ones: the answers reveal no account.
The caller commits, also after a wrong password (the count is the point).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import ngettext
from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..models import SignInRecord, User, utcnow
from . import users

PURGE_BATCH = 100  # stale rows removed per wrong password, so that the table never grows unbounded


@dataclass(frozen=True)
class Policy:
    free_failures: int = 5
    first_wait: int = 30  # seconds
    max_wait: int = 900
    account_alarm: int = 20
    forget_hours: int = 24  # a pair's wrong passwords are forgotten this long after the last one
    known_days: int = 30  # an address the owner signed in from is trusted this long

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Policy:
        defaults = cls()
        return cls(
            free_failures=max(1, int(config.get("SIGN_IN_FREE_FAILURES", defaults.free_failures))),
            first_wait=max(1, int(config.get("SIGN_IN_FIRST_WAIT_SECONDS", defaults.first_wait))),
            max_wait=max(1, int(config.get("SIGN_IN_MAX_WAIT_SECONDS", defaults.max_wait))),
            account_alarm=max(1, int(config.get("SIGN_IN_ACCOUNT_ALARM", defaults.account_alarm))),
            forget_hours=max(1, int(config.get("SIGN_IN_FORGET_HOURS", defaults.forget_hours))),
            known_days=max(1, int(config.get("SIGN_IN_KNOWN_DAYS", defaults.known_days))),
        )

    def wait_after(self, failures: int, free: int) -> int:
        """Seconds to wait after this many wrong passwords in a row, `free` of them allowed (0: none)."""
        if failures < free:
            return 0
        return int(min(self.max_wait, self.first_wait * 2 ** min(failures - free, 30)))


class Delayed(Exception):
    """This address must wait before trying this account again; nothing was checked."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))

    def message(self) -> str:
        """What to tell the person, in the request's language."""
        return str(ngettext(
            "Too many attempts with a wrong password for this account from your connection. Try again in "
            "%(num)d minute, or choose a new password with “Forgotten password?”.",
            "Too many attempts with a wrong password for this account from your connection. Try again in "
            "%(num)d minutes, or choose a new password with “Forgotten password?”.",
            self.minutes,
        ))


def account_key(email: str) -> str:
    """The account an attempt is for, as typed (folded like users.find_by_email), hashed."""
    return hashlib.sha256(email.strip().lower()[:254].encode()).hexdigest()


def address_key(raw: str | None) -> str:
    """The client an attempt comes from: its IPv4 address, or its IPv6 /64 (one subscriber's network,
    whose other addresses cost nothing to use)."""
    try:
        ip = ipaddress.ip_address((raw or "").strip().split("%")[0])
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return f"{ipaddress.IPv6Address(int(ip) >> 64 << 64)}/64"
    return str(ip)


def _locked_record(session: Session, account: str, address: str) -> SignInRecord:
    """The pair's row, created if need be and locked until the transaction ends (on SQLite, writing
    first takes the database's write lock, which serialises attempts the same way)."""
    values = {"account": account, "address": address, "failures": 0}
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        session.execute(insert(SignInRecord).values(**values).on_conflict_do_nothing())
    elif session.get(SignInRecord, (account, address)) is None:
        session.add(SignInRecord(**values))
        session.flush()
    query = (select(SignInRecord).where(SignInRecord.account == account, SignInRecord.address == address)
             .with_for_update().execution_options(populate_existing=True))
    return session.scalars(query).one()


def _account_failures(session: Session, account: str, since: datetime) -> int:
    total = session.scalar(select(func.coalesce(func.sum(SignInRecord.failures), 0))
                           .where(SignInRecord.account == account, SignInRecord.last_failure_at > since))
    return int(total or 0)


def _purge(session: Session, now: datetime, forget: datetime) -> None:
    """Rows that hold neither recent wrong passwords nor a known address; rows another attempt holds
    locked are left for later (never wait on them: two attempts purging each other's rows would deadlock)."""
    stale = (
        select(SignInRecord.account, SignInRecord.address)
        .where(or_(SignInRecord.last_failure_at.is_(None), SignInRecord.last_failure_at < forget),
               or_(SignInRecord.known_until.is_(None), SignInRecord.known_until < now))
        .limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.execute(
        delete(SignInRecord).where(tuple_(SignInRecord.account, SignInRecord.address).in_(stale)),
        execution_options={"synchronize_session": False},
    )


def attempt(session: Session, email: str, password: str, *, address: str | None,
            policy: Policy | None = None, now: datetime | None = None) -> User | None:
    """Check a password under the policy above.

    Returns the user, or None for a wrong e-mail address or password (counted; flushed, the caller
    commits). Raises Delayed, having checked nothing, while this address must wait for this account.
    """
    policy = policy or Policy()
    now = now or utcnow()
    account = account_key(email)
    record = _locked_record(session, account, address_key(address))
    if record.wait_until is not None and record.wait_until > now:
        raise Delayed(max(1, math.ceil((record.wait_until - now).total_seconds())))
    forget = now - timedelta(hours=policy.forget_hours)
    known = record.known_until is not None and record.known_until > now
    free = policy.free_failures
    if not known and _account_failures(session, account, forget) >= policy.account_alarm:
        free = 1  # many addresses guess at this account: a stranger's first wrong password already waits
    recent = record.last_failure_at is not None and record.last_failure_at > forget
    record.failures = (record.failures if recent else 0) + 1
    record.last_failure_at = now
    wait = policy.wait_after(record.failures, free)
    record.wait_until = now + timedelta(seconds=wait) if wait else None
    session.flush()
    user = users.authenticate(session, email, password)
    if user is None:
        _purge(session, now, forget)
        return None
    record.failures, record.last_failure_at, record.wait_until = 0, None, None
    record.known_until = now + timedelta(days=policy.known_days)
    session.flush()
    return user


def forgive(session: Session, email: str) -> None:
    """The owner proved they hold the mailbox (a password reset): every wait on the account ends."""
    session.execute(
        update(SignInRecord).where(SignInRecord.account == account_key(email))
        .values(failures=0, last_failure_at=None, wait_until=None),
        execution_options={"synchronize_session": False},
    )
