"""Read queries shared by the API and the web pages: a firm's listings, the territory's listings,
a listing's matches, a firm's matches. Callers pass what they return through `visibility`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, Select, and_, func, not_, select, union_all
from sqlalchemy.orm import Session, selectinload

from ..matching import ranker
from ..models import Kind, Listing, ListingStatus, Match, MatchStatus, Site

# A match's score is the calibrated chance that the pair is a real exchange (``matching.ranker``).
# Bands above the shown threshold, in words for the pages and e-mails.
VERY_GOOD = 0.6
GOOD = 0.35


def shown_threshold() -> float:
    """The one line between what a firm is shown and told of and what it is not: the probability
    from which the model's labelled pairs are right at least 9 times in 10 (``matchmaking train``)."""
    return ranker.model().threshold


def is_shown(score: float) -> bool:
    return ranker.model().shows(score)


def score_band(score: float) -> str:
    """"very_good", "good", "possible" (shown) or "weak" (under the threshold)."""
    if not is_shown(score):
        return "weak"
    return "very_good" if score >= VERY_GOOD else "good" if score >= GOOD else "possible"


def weak_lead() -> ColumnElement[bool]:
    """Matches under the threshold that nobody has acted on: never shown to the firms, never told."""
    return and_(Match.status == MatchStatus.proposed, Match.score < shown_threshold())


def firm_match_ids(firm_id: int) -> CompoundSelect[Any]:
    """Ids of the matches a firm is a party to, as a subquery: its listings by their firm index,
    then their matches by the offer and need indexes. (An OR across the two listings of a match
    cannot use an index: PostgreSQL then reads every match, at each request.)"""
    as_offer = select(Match.id).join(Listing, Match.offer_id == Listing.id).where(Listing.firm_id == firm_id)
    as_need = select(Match.id).join(Listing, Match.need_id == Listing.id).where(Listing.firm_id == firm_id)
    return union_all(as_offer, as_need)


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
    """A listing's current matches, best score first (pairs that went stale, and those under the
    shown threshold that nobody acted on, are left out)."""
    side = Match.offer_id if listing.kind is Kind.offer else Match.need_id
    return list(session.scalars(
        _with_listings(select(Match))
        .where(side == listing.id, Match.status != MatchStatus.stale, not_(weak_lead()))
        .order_by(Match.score.desc(), Match.id)
    ))


def firm_matches(
    session: Session, firm_id: int, *, status: MatchStatus | None = None, page: int = 1, per_page: int = 50,
) -> tuple[list[Match], int]:
    """The matches a firm is a party to and may see (not under the shown threshold, unless acted
    on), newest first, and how many there are."""
    query = select(Match).where(Match.id.in_(firm_match_ids(firm_id)), not_(weak_lead()))
    if status is not None:
        query = query.where(Match.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        _with_listings(query).order_by(Match.created_at.desc(), Match.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(rows), total
