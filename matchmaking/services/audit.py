"""The audit log of CCMA staff access to what firms keep from each other.

Facilitators and administrators see what the visibility rules hide from other firms (who is behind
an anonymous listing, its exact site and price, contacts) and act on firms' behalf; analysts export
statistics. Each such access leaves one row: who, what, which ids. Rows are added to the caller's
session; the caller commits (a page commits the row of its own look before rendering).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from ..models import AuditLog, User

FIRM_VIEWED = "firm.viewed"
LISTING_VIEWED = "listing.viewed"
LISTINGS_DISCLOSED = "listings.disclosed"
MATCHES_LISTED = "matches.listed"
LISTINGS_LISTED = "listings.listed"
STATS_EXPORTED = "stats.exported"
MAILBOX_VIEWED = "mailbox.viewed"
CLAIMS_LISTED = "claims.listed"


# The target is positional only, so that any keyword is a detail.
def record(session: Session, actor: User | None, action: str, target_type: str | None = None,
           target_id: int | None = None, /, **details: Any) -> AuditLog:
    row = AuditLog(actor_id=actor.id if actor is not None else None, action=action, target_type=target_type,
                   target_id=target_id, details=details)
    session.add(row)
    return row


def ids(items: Iterable[Any]) -> list[int]:
    """The ids of what a page showed, for the row's details."""
    return sorted({int(item.id) for item in items})
