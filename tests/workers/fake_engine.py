"""A stand-in for the matching engine: pairs published offers and needs with the same title.

The worker tests exercise delivery, not ranking; identical titles make the expected pairs obvious.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from matchmaking.models import Kind, Listing, ListingStatus, Match

SCORE = 0.8
PHRASES = {"phrase_fr": "mots communs : sciure · 12 km · couvre 50 % de votre besoin annuel",
           "phrase_en": "shared words: sawdust · 12 km · covers 50% of the annual need"}


def fake_refresh(session: Any, listing_id: int) -> list[tuple[Match, bool]]:
    listing = session.get(Listing, listing_id)
    if listing is None or listing.status is not ListingStatus.published:
        return []
    other_kind = Kind.need if listing.kind is Kind.offer else Kind.offer
    others = session.scalars(
        select(Listing).where(Listing.kind == other_kind, Listing.status == ListingStatus.published,
                              Listing.firm_id != listing.firm_id, Listing.title == listing.title)
        .order_by(Listing.id)
    ).all()
    out = []
    for other in others:
        offer, need = (listing, other) if listing.kind is Kind.offer else (other, listing)
        match = session.scalar(select(Match).where(Match.offer_id == offer.id, Match.need_id == need.id))
        if match is None:
            match = Match(offer_id=offer.id, need_id=need.id, score=SCORE, distance_km=12.3,
                          explanation={"words": [listing.title], **PHRASES})
            session.add(match)
            session.flush()
            out.append((match, True))
        else:
            out.append((match, False))
    return out
