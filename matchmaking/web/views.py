"""Pages."""

from __future__ import annotations

from flask import render_template, request
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import Kind, Listing, ListingStatus, Site
from . import bp

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
        .order_by(Listing.published_at.desc(), Listing.id.desc())
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
    )
