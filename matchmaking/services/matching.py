"""The bridge between the database and the pure engine: records in, Match rows out.

Each process keeps one engine index of the published listings. Before use it catches up with
the database (listings changed since its last look, with a small overlap for clock skew between
processes) and rebuilds itself when rows vanished, so web and worker processes agree without
talking to each other.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from ..matching import nomenclature, records, taxonomy
from ..matching.engine import Index
from ..models import Decision, Firm, Kind, Listing, ListingStatus, Match, MatchStatus, Site, utcnow
from . import queries

MATCHES_PER_LISTING = 20
CLOCK_SKEW = timedelta(seconds=5)


def to_record(listing: Listing) -> records.Listing:
    """The engine's view of a listing. An anonymous listing is placed at its commune's centroid and
    matched without its firm's sector (NAF code), so that no score, distance or ranking another firm
    sees can reveal its exact site or who the firm is (see services/visibility.py)."""
    site = listing.site
    lat, lon = (site.commune.lat, site.commune.lon) if listing.anonymous else (site.lat, site.lon)
    return records.Listing(
        id=listing.id,
        kind=listing.kind.value,
        title=listing.title,
        description=listing.description or "",
        low_code=listing.low_code,
        family=listing.material_family,
        hazardous=listing.hazardous,
        accepts_hazardous=listing.accepts_hazardous,
        lat=lat,
        lon=lon,
        radius_km=listing.radius_km if listing.kind is Kind.need else None,
        annual_tonnes=listing.annual_tonnes,
        lot_tonnes=listing.lot_tonnes,
        frequency=listing.frequency.value,
        available_from=listing.available_from,
        available_until=listing.available_until,
        sector_naf=None if listing.anonymous else listing.firm.naf_code,
    )


def _load(session: Session) -> Any:
    return select(Listing).options(
        selectinload(Listing.site).selectinload(Site.commune), selectinload(Listing.firm)
    )


class _IndexCache:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.index: Index | None = None
        self.synced_at: datetime | None = None
        self.bind_key: str | None = None
        self.versions: dict[int, datetime] = {}  # updated_at of each listing as indexed

    def reset(self) -> None:
        with self.lock:
            self.index, self.synced_at, self.bind_key = None, None, None
            self.versions = {}

    def get(self, session: Session) -> Index:
        with self.lock:
            bind_key = str(session.get_bind().engine.url)
            now = utcnow()
            if self.index is None or self.bind_key != bind_key:
                published = list(session.scalars(_load(session).where(Listing.status == ListingStatus.published)))
                self.index = Index.build(to_record(listing) for listing in published)
                self.versions = {listing.id: listing.updated_at for listing in published}
                self.bind_key = bind_key
            else:
                assert self.synced_at is not None
                # The overlap (CLOCK_SKEW) brings back rows already indexed: only new versions are.
                recent = session.execute(select(Listing.id, Listing.updated_at)
                                         .where(Listing.updated_at >= self.synced_at - CLOCK_SKEW))
                fresh = [i for i, at in recent if self.versions.get(i) != at]
                for listing in session.scalars(_load(session).where(Listing.id.in_(fresh))) if fresh else ():
                    self.versions[listing.id] = listing.updated_at
                    if listing.status is ListingStatus.published:
                        self.index.add(to_record(listing))
                    else:
                        self.index.remove(listing.id)
                count = session.scalar(
                    select(func.count()).select_from(Listing).where(Listing.status == ListingStatus.published)
                )
                if count != len(self.index):  # rows deleted (a firm closed its account): start afresh
                    self.index = None
                    return self.get(session)
            self.synced_at = now
            return self.index


_cache = _IndexCache()


def current_index(session: Session) -> Index:
    return _cache.get(session)


def reset_index() -> None:
    """Forget the process's index (tests switch databases; a worker can start afresh)."""
    _cache.reset()


def _pending_both(match: Match) -> bool:
    return match.offer_decision is Decision.pending and match.need_decision is Decision.pending


def refresh_matches(session: Session, listing_id: int) -> list[tuple[Match, bool]]:
    """Match one listing against the published opposite side and upsert its Match rows.

    Returns each current match with True when the firms have not heard of it yet (new, or back
    after having gone stale). Pairs that no longer score and nobody acted on become stale; pairs
    with a decision are kept as they are. Flushes, never commits.
    """
    listing = session.get(Listing, listing_id)
    if listing is None:
        return []
    is_offer = listing.kind is Kind.offer
    side = Match.offer_id if is_offer else Match.need_id
    existing = {
        (m.need_id if is_offer else m.offer_id): m for m in session.scalars(select(Match).where(side == listing.id))
    }
    if listing.status is not ListingStatus.published:
        for match in existing.values():
            if _pending_both(match) and match.status is MatchStatus.proposed:
                match.status = MatchStatus.stale
        session.flush()
        return []

    index = current_index(session)
    index.add(to_record(listing))  # this transaction's version, even before commit
    results = index.match(to_record(listing), k=MATCHES_PER_LISTING)
    other_ids = [other_id for other_id, _score, _expl in results]
    # Still published, and not the same firm's (a firm does not trade with itself).
    eligible = set(
        session.scalars(
            select(Listing.id).where(
                Listing.id.in_(other_ids),
                Listing.status == ListingStatus.published,
                Listing.firm_id != listing.firm_id,
            )
        )
    )

    out: list[tuple[Match, bool]] = []
    seen: set[int] = set()
    for other_id, _raw_score, explanation in results:
        if other_id not in eligible:
            continue
        seen.add(other_id)
        offer_id, need_id = (listing.id, other_id) if is_offer else (other_id, listing.id)
        # The score a firm sees is the calibrated chance of a real exchange; the engine's own score
        # (which ranks) stays in the explanation.
        values = {
            "score": round(min(max(explanation.probability, 0.0), 1.0), 6),
            "distance_km": None if explanation.distance_km is None else round(explanation.distance_km, 1),
            "explanation": explanation.to_dict() | {"phrase_fr": explanation.phrase("fr"),
                                                    "phrase_en": explanation.phrase("en")},
        }
        found = existing.get(other_id)
        if found is None:
            match, fresh = _insert(session, offer_id, need_id, values)
        else:
            match, fresh = found, found.status is MatchStatus.stale
            for field, value in values.items():
                setattr(match, field, value)
            if fresh:
                match.status = MatchStatus.proposed
        out.append((match, fresh))
    for other_id, match in existing.items():
        if other_id not in seen and _pending_both(match) and match.status is MatchStatus.proposed:
            match.status = MatchStatus.stale
    session.flush()
    return out


def _insert(session: Session, offer_id: int, need_id: int, values: dict[str, Any]) -> tuple[Match, bool]:
    """Insert a pair (True), or update it when another worker inserted it first (False)."""
    try:
        with session.begin_nested():
            match = Match(offer_id=offer_id, need_id=need_id, status=MatchStatus.proposed, **values)
            session.add(match)
        return match, True
    except IntegrityError:
        match = session.scalars(select(Match).where(Match.offer_id == offer_id, Match.need_id == need_id)).one()
        for field, value in values.items():
            setattr(match, field, value)
        return match, False


def rematch_all(session: Session, listing_ids: list[int] | None = None) -> int:
    """Refresh the matches of the given published listings (all when None); returns how many."""
    query = select(Listing.id).where(Listing.status == ListingStatus.published)
    if listing_ids is not None:
        query = query.where(Listing.id.in_(listing_ids))
    ids = list(session.scalars(query.order_by(Listing.id)))
    for listing_id in ids:
        refresh_matches(session, listing_id)
    return len(ids)


@dataclass(frozen=True, slots=True)
class SearchHit:
    listing: Listing
    score: float
    distance_km: float | None
    explanation: dict[str, Any]


def search(
    session: Session,
    *,
    q: str,
    kind: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    radius_km: float | None = None,
    family: str | None = None,
    k: int = 20,
    exclude_firm_id: int | None = None,
) -> list[SearchHit]:
    """Published listings that best answer a text near a place, best first.

    Distances come from what any viewer may see (anonymous listings sit at their commune's
    centroid), so neither the ranking nor a radius filter reveals an exact site.
    """
    index = current_index(session)
    own: frozenset[int] = frozenset()
    if exclude_firm_id is not None:
        own = frozenset(session.scalars(select(Listing.id).where(
            Listing.firm_id == exclude_firm_id, Listing.status == ListingStatus.published)))
    found = index.search(q, kind=kind if kind in (Kind.offer.value, Kind.need.value) else None, lat=lat, lon=lon,
                         radius_km=radius_km, family=family, k=k, exclude=own)
    listings = {
        listing.id: listing
        for listing in session.scalars(
            _load(session).where(Listing.id.in_([i for i, _s, _e in found]),
                                 Listing.status == ListingStatus.published)
        )
    }
    hits: list[SearchHit] = []
    for listing_id, score, explanation in found:
        listing = listings.get(listing_id)
        if listing is None or (exclude_firm_id is not None and listing.firm_id == exclude_firm_id):
            continue
        hits.append(SearchHit(listing, round(score, 6), explanation.distance_km, explanation.to_dict()))
    # Equal scores are common (a family alone, a word alone): the engine's order among them is its
    # index's, which follows the integer ids; the shown order does not (queries.ranked).
    hits.sort(key=lambda hit: queries.ranked(hit.score, hit.listing.public_id))
    return hits[:k]


def classify(text: str, k: int = 5) -> dict[str, Any]:
    """Up to k List-of-Waste codes for a free text, best first, and the material family."""
    suggestion = taxonomy.suggest_codes(text or "", k=k)
    entries = nomenclature.low_by_code()
    return {
        "suggestions": [
            {
                "code": code,
                "label_fr": entries[code].label_fr,
                "label_en": entries[code].label_en,
                "hazardous": entries[code].hazardous,
                "score": round(score, 4),
            }
            for code, score in suggestion.codes
            if code in entries
        ],
        "material_family": suggestion.family,
    }


def firms_of(session: Session, match: Match) -> tuple[Firm, Firm]:
    """(offering firm, needing firm) of a match."""
    return match.offer.firm, match.need.firm
