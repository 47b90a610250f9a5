"""Search the territory's listings around one of my sites: a ranked list and a map."""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..extensions import db, db_session
from ..models import Kind, Match, MaterialFamily
from ..services import queries
from ..services import validation as v
from . import bp, explain
from .common import audience, firm_required, my_firm
from .listings import families

RADII = (10, 25, 50, 100, 200)
MAX_RESULTS = 10  # the best ten, on the list and the map: what a phone screen lets one compare


@bp.get("/search")
@firm_required
def search() -> Any:
    firm = my_firm()
    args = request.args
    values = {k: (args.get(k) or "").strip()[:200] for k in ("q", "kind", "family", "site_id", "radius_km")}
    errors: dict[str, Any] = {}
    site = next((s for s in firm.sites if str(s.id) == values["site_id"]), firm.main_site)
    # With one site there is no choice to get wrong: the hidden field is simply ignored.
    if len(firm.sites) > 1 and values["site_id"] and site is not None and str(site.id) != values["site_id"]:
        errors["site_id"] = _l("This site is not one of your firm's sites.")
    if site is not None:
        values["site_id"] = str(site.id)
    kind = values["kind"] if values["kind"] in (Kind.offer.value, Kind.need.value) else ""
    if values["kind"] and not kind:
        errors["kind"] = _l("The kind is either offer or need.")
    values["kind"] = kind
    family = values["family"] or None
    if family and db.session.get(MaterialFamily, family) is None:
        errors["family"] = _l("Unknown material family.")
        family = None
    radius: float | None = 50.0
    if values["radius_km"]:
        try:
            radius = v.number(values["radius_km"], strictly_positive=True, maximum=1000)
        except v.FieldError as exc:
            errors["radius_km"] = exc.message
    else:
        values["radius_km"] = "50"
    searched = bool(values["q"] or family or "kind" in args)
    hits: list[dict[str, Any]] = []
    if searched and not errors and site is not None:
        hits = _hits(values["q"], kind or None, family, site.lat, site.lon, radius, firm.id)
    status = 422 if errors else 200
    return render_template(
        "search.html", values=values, errors=errors, hits=hits, searched=searched, families=families(),
        radii=RADII, site=site, tile_url=current_app.config["MAP_TILE_URL"],
        tile_attribution=current_app.config["MAP_TILE_ATTRIBUTION"],
    ), status


def _hits(q: str, kind: str | None, family: str | None, lat: float, lon: float, radius: float | None,
          firm_id: int) -> list[dict[str, Any]]:
    from ..services import matching

    seen = audience()
    lang = str(get_locale() or "fr")
    found = matching.search(db_session(), q=q, kind=kind, lat=lat, lon=lon, radius_km=radius, family=family,
                            k=MAX_RESULTS, exclude_firm_id=firm_id)
    listing_ids = [hit.listing.id for hit in found]
    # The matches my firm already has with these listings: the way to act on a result.
    paired: dict[int, str] = {}  # listing → the match's public id
    if listing_ids:
        # My firm's matches (its listings' indexes first), then those with a listing found; the
        # results are other firms' listings, so the found side is the other one.
        found_ids = set(listing_ids)
        for match_id, offer_id, need_id in db.session.execute(
            select(Match.public_id, Match.offer_id, Match.need_id)
            .where(Match.id.in_(queries.firm_match_ids(firm_id)),
                   Match.offer_id.in_(listing_ids) | Match.need_id.in_(listing_ids))
            .order_by(Match.id)
        ):
            paired.setdefault(offer_id if offer_id in found_ids else need_id, match_id)
    out = []
    for hit in found:
        view = seen.view(hit.listing)
        # Distance as this viewer may know it: an anonymous listing sits at its commune's centre.
        distance = seen.distance_km(hit.listing, lat, lon)
        data = seen.explanation(hit.explanation, hit.listing, distance)
        out.append({
            "view": view, "score": hit.score, "distance_km": distance,
            # The distance has its own place on the result; the phrase says why the material fits.
            "phrase": explain.phrase(data, lang, without_distance=True), "match_id": paired.get(hit.listing.id),
        })
    return out
