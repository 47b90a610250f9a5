"""Search the territory's listings, and suggest a List of Waste code for a text."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, jsonify
from flask_babel import lazy_gettext as _l

from ..extensions import db_session
from ..services import places, visibility
from ..services import validation as v
from ..services.errors import ValidationError
from . import bp, render, schemas
from .openapi import operation
from .parsing import json_body, query_args
from .security import current_user

INSEE_RE = re.compile(r"^\d[\dAB]\d{3}$")
POINT_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$")
CLASSIFY_MAX = 2000


def _near(value: str | None, errors: v.Collector) -> tuple[float, float] | None:
    """`near` as coordinates: a commune (INSEE code, its centroid) or "lat,lon"."""
    if value is None or value == "":
        return None
    if INSEE_RE.match(value):
        commune = errors.check("near", places.commune_by_insee, db_session(), value)
        return None if commune is None else (commune.lat, commune.lon)
    if m := POINT_RE.match(value):
        lat, lon = float(m[1]), float(m[2])
        if -90 <= lat <= 90 and -180 <= lon <= 180:
            return lat, lon
    errors.add("near", _l("Give a commune's INSEE code or a point as lat,lon."))
    return None


@bp.get("/search")
@operation("Ranked listings for a text near a place (anonymous listings as any other firm sees them)",
           tags=["search"], query=schemas.SearchQuerySchema,
           responses={200: ("Best first.", schemas.SearchHitSchema(many=True))})
def search() -> Response:
    from ..services import matching

    args = query_args(schemas.SearchQuerySchema)
    user = current_user()
    errors = v.Collector()
    q, family = args.get("q") or "", args.get("family") or None
    if not q and not family:
        errors.add("q", _l("Say what you are looking for."))
    point = _near(args.get("near"), errors)
    if point is None and "near" not in errors.errors and user.firm is not None and user.firm.main_site:
        point = user.firm.main_site.lat, user.firm.main_site.lon  # the caller's own site: theirs to know
    radius = args.get("radius_km")
    if radius is not None and point is None and "near" not in errors.errors:
        errors.add("near", _l("A radius needs a place: give near."))
    errors.raise_if_any()
    kind = args.get("kind")
    lat, lon = point if point else (None, None)
    limit = args.get("limit", 20)
    hits = matching.search(db_session(), q=q, kind=kind.value if kind else None, lat=lat, lon=lon,
                           radius_km=radius, family=family, k=limit, exclude_firm_id=user.firm_id)
    audience = visibility.audience(db_session(), user)
    out: list[dict[str, Any]] = []
    for found in hits:
        if not audience.can_see(found.listing):
            continue
        distance = found.distance_km
        if lat is not None and lon is not None:
            # Revealed partners are placed at their real site; everyone else where the engine put them.
            distance = audience.distance_km(found.listing, lat, lon)
            if radius is not None and distance > radius:
                continue
        out.append(render.hit(audience, found.listing, found.score, distance, found.explanation))
    return jsonify(out)


@bp.post("/classify")
@operation("Suggest List of Waste codes and a material family for a free text", tags=["search"],
           body=schemas.ClassifyInSchema, responses={200: ("At most 5 suggestions, best first.",
                                                           schemas.ClassifyOutSchema)})
def classify() -> Response:
    from ..services import matching

    data = json_body(schemas.ClassifyInSchema)
    text = data["text"].strip()
    if not text:
        raise ValidationError({"text": _l("This field is required.")})
    if len(text) > CLASSIFY_MAX:
        raise ValidationError({"text": _l("At most %(n)s characters.", n=CLASSIFY_MAX)})
    result = matching.classify(text, k=5)
    return jsonify(schemas.ClassifyOutSchema().dump(result))
