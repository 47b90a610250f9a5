"""Answers: domain objects through `visibility`, then through the response schemas, so that what
goes out is exactly what the viewer may see and what the OpenAPI document describes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from flask import Response, jsonify

from ..models import Exchange, Listing, Match, User
from ..services import decisions
from ..services.visibility import Audience
from . import schemas

_listing = schemas.ListingOutSchema()
_match = schemas.MatchOutSchema()
_exchange = schemas.ExchangeOutSchema()
_hit = schemas.SearchHitSchema()


def listing(audience: Audience, item: Listing) -> dict[str, Any]:
    out: dict[str, Any] = _listing.dump(audience.view(item))
    return out


def hit(audience: Audience, item: Listing, score: float, distance_km: float | None,
        explanation: dict[str, Any]) -> dict[str, Any]:
    view = SimpleNamespace(**vars(audience.view(item)), score=score, distance_km=distance_km,
                           explanation=audience.explanation(explanation, item, distance_km))
    out: dict[str, Any] = _hit.dump(view)
    return out


def match(audience: Audience, item: Match, user: User) -> dict[str, Any]:
    """A match seen by one of its parties: distances and explanation as that party may know them."""
    sides = decisions.sides_of(item, user)
    side = sides[0] if sides else "offer"
    mine, other = (item.offer, item.need) if side == "offer" else (item.need, item.offer)
    if audience.shows_identity(other) and item.distance_km is not None:
        distance: float | None = item.distance_km
    else:
        distance = audience.distance_between(mine, other)
    my_decision = item.offer_decision if side == "offer" else item.need_decision
    their_decision = item.need_decision if side == "offer" else item.offer_decision
    data = {
        "match_id": item.public_id,
        "offer_id": item.offer.public_id,
        "need_id": item.need.public_id,
        "score": item.score,
        "distance_km": distance,
        "explanation": audience.explanation(item.explanation, other, distance),
        "status": item.status,
        "my_side": side,
        "my_decision": my_decision,
        "their_decision": their_decision,
        # A match is made when its listings are: its times are told as the other listing's are.
        "accepted_at": audience.time(other, item.accepted_at),
        "created_at": audience.time(other, item.created_at),
        "offer": audience.view(item.offer),
        "need": audience.view(item.need),
    }
    out: dict[str, Any] = _match.dump(data)
    return out


def exchange(item: Exchange) -> dict[str, Any]:
    out: dict[str, Any] = _exchange.dump(item)
    return out


def page(items: list[dict[str, Any]], total: int, page_number: int, per_page: int) -> Response:
    """A JSON array with the total in X-Total-Count (lists stay plain arrays, as documented)."""
    response = jsonify(items)
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Page"] = str(page_number)
    response.headers["X-Per-Page"] = str(per_page)
    return response


TOTAL_HEADERS = {
    "X-Total-Count": {"description": "How many items in all pages.", "schema": {"type": "integer"}},
    "X-Page": {"description": "This page's number.", "schema": {"type": "integer"}},
    "X-Per-Page": {"description": "Items per page.", "schema": {"type": "integer"}},
}
