"""Pages."""

from __future__ import annotations

from typing import Any

from flask import jsonify, render_template, request
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from ..extensions import db
from ..models import Commune, Kind, Listing, ListingStatus, Notification, Site
from ..services import queries
from . import bp
from .common import audience, firm_required, home_url, my_firm, staff_home, user
from .matches import waiting_matches

PAGE_SIZE = 30


@bp.get("/")
def index() -> str:
    """The published listings of the territory, newest first: the service seen alive."""
    kind = request.args.get("kind")
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    query = select(Listing).where(Listing.status == ListingStatus.published)
    if kind in (Kind.offer.value, Kind.need.value):
        query = query.where(Listing.kind == Kind(kind))
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    listings = db.session.scalars(
        query.options(
            selectinload(Listing.firm),
            selectinload(Listing.site).selectinload(Site.commune),
            selectinload(Listing.family),
        )
        .order_by(*queries.mixed_order(Listing, day=Listing.published_at))
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    counts = dict(
        db.session.execute(
            select(Listing.kind, func.count()).where(Listing.status == ListingStatus.published).group_by(Listing.kind)
        ).all()
    )
    return render_template(
        "index.html",
        listings=listings,
        kind=kind,
        page=page,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        offers=counts.get(Kind.offer, 0),
        needs=counts.get(Kind.need, 0),
        view=audience().view,
    )


@bp.get("/my")
@firm_required
def dashboard() -> str:
    """Where a signed-in firm starts: what waits for it, and the two things it comes to do."""
    firm = my_firm()
    counts = dict(
        db.session.execute(
            select(Listing.status, func.count()).where(Listing.firm_id == firm.id).group_by(Listing.status)
        ).all()
    )
    waiting = waiting_matches(firm, 5)
    return render_template(
        "dashboard.html",
        firm=firm,
        published=counts.get(ListingStatus.published, 0),
        paused=counts.get(ListingStatus.paused, 0) + counts.get(ListingStatus.draft, 0),
        waiting=waiting,
    )


@bp.get("/communes")
def communes() -> Response:
    """Communes of a postal code, for the commune field's suggestions."""
    code = (request.args.get("postal_code") or "").strip()
    if not (code.isdigit() and len(code) == 5):
        return jsonify([])
    rows = db.session.scalars(select(Commune).where(Commune.postal_codes.contains(code)).order_by(Commune.name))
    return jsonify([{"insee": c.insee, "name": c.name} for c in rows if code in c.postal_codes.split()])


@bp.app_context_processor
def navigation() -> dict[str, Any]:
    return {"home_url": home_url, "staff_home": staff_home}


@bp.app_context_processor
def unread_notifications() -> dict[str, Any]:
    found = user()
    if found is None:
        return {"unread_count": 0}
    count = db.session.scalar(
        select(func.count()).select_from(Notification)
        .where(Notification.user_id == found.id, Notification.read_at.is_(None))
    )
    return {"unread_count": count or 0}
