"""Read queries shared by the API and the web pages: a firm's listings, the territory's listings,
a listing's matches, a firm's matches. Callers pass what they return through `visibility`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, Date, Select, and_, func, not_, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload
from sqlalchemy.sql.functions import FunctionElement

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


class utc_day(FunctionElement[Any]):  # noqa: N801 — an SQL function, named like one
    """The UTC day of a stored instant: `date(x)` on SQLite (which stores UTC), the date of
    `x AT TIME ZONE 'UTC'` on PostgreSQL (whose `date(x)` would follow the session's time zone)."""

    type = Date()
    inherit_cache = True
    name = "utc_day"


@compiles(utc_day)
def _utc_day(element: utc_day, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_day, "postgresql")
def _utc_day_pg(element: utc_day, compiler: Any, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC' AS DATE)"


def mixed_order(model: type[Listing] | type[Match], *first: Any,
                day: InstrumentedAttribute[Any] | None = None) -> tuple[Any, ...]:
    """The order of every list that mixes firms' listings or matches (search, the territory's
    listings, the map, a firm's matches): `first` (a score, a status rank) when given, else the day
    of `day` (creation by default), newest first; then the public id, which is random.

    Never the creation instant nor the integer id: both follow creation order, so an anonymous
    listing made with named ones of its firm (one import) would sit between them, and be theirs."""
    keys = first or (utc_day(day if day is not None else model.created_at).desc(),)
    return (*keys, model.public_id)


def ranked(score: float, public_id: str) -> tuple[float, str]:
    """The same order for hits ranked in Python: best score first, then the public id."""
    return (-score, public_id)


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


def _page(session: Session, query: Select[Any], page: int, per_page: int,
          order: tuple[Any, ...]) -> tuple[list[Listing], int]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.scalars(
        _with_places(query).order_by(*order).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(rows), total


def firm_listings(
    session: Session, firm_id: int, *, kind: Kind | None = None, status: ListingStatus | None = None,
    page: int = 1, per_page: int = 50,
) -> tuple[list[Listing], int]:
    """One firm's listings in every status (or one), newest first, and how many there are (for
    the firm itself: to the instant)."""
    query = select(Listing).where(Listing.firm_id == firm_id)
    if kind is not None:
        query = query.where(Listing.kind == kind)
    if status is not None:
        query = query.where(Listing.status == status)
    return _page(session, query, page, per_page, (Listing.created_at.desc(), Listing.id.desc()))


def published_listings(
    session: Session, *, kind: Kind | None = None, family: str | None = None, page: int = 1, per_page: int = 50,
) -> tuple[list[Listing], int]:
    """The territory's published listings, newest day first (`mixed_order`: within a day, an
    order that reveals nothing hidden)."""
    query = select(Listing).where(Listing.status == ListingStatus.published)
    if kind is not None:
        query = query.where(Listing.kind == kind)
    if family:
        query = query.where(Listing.material_family == family)
    return _page(session, query, page, per_page, mixed_order(Listing))


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
        .order_by(*mixed_order(Match, Match.score.desc()))
    ))


def firm_matches(
    session: Session, firm_id: int, *, status: MatchStatus | None = None, page: int = 1, per_page: int = 50,
) -> tuple[list[Match], int]:
    """The matches a firm is a party to and may see (not under the shown threshold, unless acted
    on), newest day first (`mixed_order`), and how many there are."""
    query = select(Match).where(Match.id.in_(firm_match_ids(firm_id)), not_(weak_lead()))
    if status is not None:
        query = query.where(Match.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        _with_listings(query).order_by(*mixed_order(Match))
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(rows), total
