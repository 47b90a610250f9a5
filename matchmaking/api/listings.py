"""Listings: create, read, list, change, close; and the matches of one's own listing."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, url_for

from ..extensions import db, db_session
from ..models import Listing, ListingStatus, LowCode
from ..services import listings as listing_service
from ..services import queries, visibility
from . import bp, render, schemas
from .openapi import operation
from .parsing import all_errors, json_body_partial, query_args
from .security import current_firm, current_user

ID = "<public_id:listing_id>"  # an integer id matches no route: a plain 404


SUGGEST_MIN_SCORE = 0.2
SUGGEST_MARGIN = 0.02  # closer than this, two codes are a tie


def suggest_code(data: dict[str, Any]) -> None:
    """Fill low_code (and the family) from the text when the firm gave no code and one
    suggestion stands out; a tie between codes is left for the firm to settle."""
    from ..services import matching

    if data.get("low_code") or not isinstance(data.get("title"), str):
        return
    result = matching.classify(f"{data['title']} {data.get('description') or ''}", k=2)
    ranked = result["suggestions"]
    if result["material_family"] and not data.get("material_family"):
        data["material_family"] = result["material_family"]
    if not ranked or ranked[0]["score"] < SUGGEST_MIN_SCORE:
        return
    if len(ranked) > 1 and ranked[1]["score"] > ranked[0]["score"] - SUGGEST_MARGIN:
        return
    low = db.session.get(LowCode, ranked[0]["code"])
    if low is not None and low.family_slug in (None, data.get("material_family")):
        data["low_code"] = ranked[0]["code"]


@bp.post("/listings")
@operation("Publish an offer or a need (or keep it as a draft)", tags=["listings"],
           description="Without low_code, a List of Waste code is suggested from the title and description "
                       "when one stands out, and the material family is derived from the text. Publishing "
                       "needs a confirmed e-mail address (403 until then; a draft is always accepted).",
           body=schemas.ListingInSchema, errors=[403],
           responses={201: ("The stored listing.", schemas.ListingOutSchema)})
def create_listing() -> tuple[Response, int, dict[str, str]]:
    data, shape_errors = json_body_partial(schemas.ListingInSchema)
    firm = current_firm()
    publish = data.pop("status", "published") == "published"
    with all_errors(shape_errors):
        suggest_code(data)
        listing = listing_service.create_listing(db_session(), firm, data, publish=publish, by=current_user())
    db.session.commit()
    body = render.listing(visibility.audience(db_session(), current_user()), listing)
    return jsonify(body), 201, {"Location": url_for("api.get_listing", listing_id=listing.public_id)}


@bp.get("/listings")
@operation("Published listings of the territory, or yours with mine=1 (newest first)", tags=["listings"],
           query=schemas.ListingQuerySchema, headers={200: render.TOTAL_HEADERS},
           responses={200: ("A page of listings.", schemas.ListingOutSchema(many=True))})
def list_listings() -> Response:
    args = query_args(schemas.ListingQuerySchema)
    page, per_page = args.get("page", 1), args.get("per_page", 50)
    user = current_user()
    items: list[Listing]
    if args.get("mine"):
        if user.firm_id is None:
            items, total = [], 0
        else:
            items, total = queries.firm_listings(db_session(), user.firm_id, kind=args.get("kind"),
                                                 status=args.get("status"), page=page, per_page=per_page)
    else:
        items, total = queries.published_listings(db_session(), kind=args.get("kind"), family=args.get("family"),
                                                  page=page, per_page=per_page)
    audience = visibility.audience(db_session(), user)
    return render.page([render.listing(audience, item) for item in items], total, page, per_page)


@bp.get(f"/listings/{ID}")
@operation("One listing, as you may see it", tags=["listings"],
           responses={200: ("The listing.", schemas.ListingOutSchema)})
def get_listing(listing_id: str) -> Response:
    user = current_user()
    listing = visibility.visible_listing(db_session(), user, listing_id)
    return jsonify(render.listing(visibility.audience(db_session(), user), listing))


@bp.patch(f"/listings/{ID}")
@operation("Change your listing (only the fields sent); status publishes, pauses or closes it",
           tags=["listings"], body=schemas.ListingPatchSchema, errors=[403],
           responses={200: ("The updated listing.", schemas.ListingOutSchema)})
def update_listing(listing_id: str) -> Response:
    user = current_user()
    listing = visibility.own_listing(db_session(), user, listing_id)
    data, shape_errors = json_body_partial(schemas.ListingPatchSchema)
    status = data.pop("status", None)
    with all_errors(shape_errors):
        listing_service.update_listing(db_session(), listing, data, by=user)
        if status is not None:
            listing_service.set_status(db_session(), listing, ListingStatus(status), by=user)
    db.session.commit()
    return jsonify(render.listing(visibility.audience(db_session(), user), listing))


@bp.delete(f"/listings/{ID}")
@operation("Close your listing", tags=["listings"], responses={204: ("Closed.", None)})
def close_listing(listing_id: str) -> tuple[str, int]:
    listing = visibility.own_listing(db_session(), current_user(), listing_id)
    listing_service.set_status(db_session(), listing, ListingStatus.closed)
    db.session.commit()
    return "", 204


@bp.get(f"/listings/{ID}/matches")
@operation("The matches of your listing, best first", tags=["matches"],
           responses={200: ("Ranked matches.", schemas.MatchOutSchema(many=True))})
def listing_matches(listing_id: str) -> Response:
    user = current_user()
    listing = visibility.own_listing(db_session(), user, listing_id)
    audience = visibility.audience(db_session(), user)
    return jsonify([render.match(audience, match, user) for match in queries.listing_matches(db_session(), listing)])
