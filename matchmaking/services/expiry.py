"""Listings past their availability end expire (and the workers hear of it like any change)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Listing, ListingStatus
from . import listings


def expire_listings(session: Session, today: date | None = None) -> list[int]:
    """Published or paused listings whose `available_until` is before today become expired."""
    today = today or date.today()
    due = session.scalars(
        select(Listing).where(
            Listing.status.in_([ListingStatus.published, ListingStatus.paused]),
            Listing.available_until.is_not(None),
            Listing.available_until < today,
        ).order_by(Listing.id)
    ).all()
    for listing in due:
        listings.set_status(session, listing, ListingStatus.expired)
    return [listing.id for listing in due]
