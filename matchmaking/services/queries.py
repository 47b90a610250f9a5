"""Read queries shared by the API and the web pages: a firm's listings, the territory's listings,
a listing's matches, a firm's matches. Callers pass what they return through `visibility`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from ..models import Kind, Listing, ListingStatus, Match, MatchStatus, Site


def _with_places(query: Select[Any]) -> Select[Any]:
    return query.options(
        selectinload(Listing.site).selectinload(Site.commune),
        selectinload(Listing.firm),
    )


def _page(session: Session, query: Select[Any], page: int, per_page: int) -> tuple[list[Listing], int]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.scalars(
        _with_places(query).order_by(Listing.created_at.desc(), Listing.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(rows), total


def firm_listings(
    session: Session, firm_id: int, *, kind: Kind | None = None, status: ListingStatus | None = None,
    page: int = 1, per_page: int = 50,
) -> tuple[list[Listing], int]:
    """One firm's listings in every status (or one), newest first, and how many there are."""
    query = select(Listing).where(Listing.firm_id == firm_id)
    if kind is not None:
        query = query.where(Listing.kind == kind)
    if status is not None:
        query = query.where(Listing.status == status)
    return _page(session, query, page, per_page)


def published_listings(
    session: Session, *, kind: Kind | None = None, family: str | None = None, page: int = 1, per_page: int = 50,
) -> tuple[list[Listing], int]:
    """The territory's published listings, newest first (an order that reveals nothing hidden)."""
    query = select(Listing).where(Listing.status == ListingStatus.published)
    if kind is not None:
        query = query.where(Listing.kind == kind)
    if family:
        query = query.where(Listing.material_family == family)
    return _page(session, query, page, per_page)


def _with_listings(query: Select[Any]) -> Select[Any]:
    return query.options(
        selectinload(Match.offer).selectinload(Listing.site).selectinload(Site.commune),
        selectinload(Match.need).selectinload(Listing.site).selectinload(Site.commune),
        selectinload(Match.offer).selectinload(Listing.firm),
        selectinload(Match.need).selectinload(Listing.firm),
    )


def listing_matches(session: Session, listing: Listing) -> list[Match]:
    """A listing's current matches, best score first (pairs that went stale are left out)."""
    side = Match.offer_id if listing.kind is Kind.offer else Match.need_id
    return list(session.scalars(
        _with_listings(select(Match))
        .where(side == listing.id, Match.status != MatchStatus.stale)
        .order_by(Match.score.desc(), Match.id)
    ))


def firm_matches(
    session: Session, firm_id: int, *, status: MatchStatus | None = None, page: int = 1, per_page: int = 50,
) -> tuple[list[Match], int]:
    """The matches a firm is a party to, newest first, and how many there are."""
    offer, need = aliased(Listing), aliased(Listing)
    query = (
        select(Match)
        .join(offer, Match.offer_id == offer.id)
        .join(need, Match.need_id == need.id)
        .where(or_(offer.firm_id == firm_id, need.firm_id == firm_id))
    )
    if status is not None:
        query = query.where(Match.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        _with_listings(query).order_by(Match.created_at.desc(), Match.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(rows), total
