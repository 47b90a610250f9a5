"""What a viewer may see of a listing or a firm: the single place that decides it.

The rule: an *anonymous* listing of another firm shows no firm identity, no exact location (its
commune only; the commune centroid stands in for coordinates and for every distance) and no price,
until a match between the viewer's firm and the listing's firm has been accepted by both.
The owner firm always sees everything, and so do CCMA facilitators and administrators (they
introduce firms to each other); analysts and visitors who are not signed in see what any third firm
sees. A firm's contact details (person, e-mail, phone) are personal data: they are shown only once
the two firms have accepted a match, whether the listing is anonymous or not.

Every entry point (JSON API, web pages, e-mails) builds an `Audience` once per request and goes
through it: `audience.view(listing)` for what to show, `audience.point(listing)` and
`audience.distance_km(...)` for anything computed from a location (distances, radius filters,
sorting), so that hidden fields can leak neither through a field nor through an order or a filter.

What is hidden never enters a score either, since scores and rankings are shared with the other
firm: the engine sees an anonymous listing at its commune's centroid and without its firm's sector
(NAF code, part of the firm's identity) — services/matching.py `to_record`. Volumes are not hidden
when published: a listing's quantity, unit and rhythm are shown with it (a buyer judges a lot by
them), so they may weigh in the quantity part of a score. The volumes another firm never sees are
those nobody published to it: drafts, paused, closed or expired listings it is not paired with,
and the exchanges two other firms recorded (CCMA statistics show them only in aggregate, with
small-count suppression). tests/reliability/test_two_worlds.py holds the service to this: two
databases differing only in these fields give a third firm the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ..models import (
    Firm,
    Frequency,
    Kind,
    Listing,
    ListingStatus,
    Match,
    MatchStatus,
    Role,
    Unit,
    User,
)
from .errors import NotFound
from .queries import firm_match_ids

# Staff who facilitate introductions see identities; analysts only need aggregates.
STAFF_SEEING_IDENTITIES = frozenset({Role.facilitator, Role.admin})
# Where an audience notes the anonymous listings it showed in full by staff privilege (Session.info),
# for the request to write one audit row (see take_disclosed).
DISCLOSED = "visibility.disclosed"
EARTH_RADIUS_KM = 6371.0088
# Keys an engine explanation may carry that would locate or name the other firm.
_REVEALING_KEYS = frozenset(
    {"firm", "firm_id", "firm_name", "siret", "site", "site_id", "address", "lat", "lon", "latitude",
     "longitude", "price", "price_eur_per_unit", "contact", "contact_name", "contact_email", "contact_phone"}
)
_DISTANCE_KEYS = frozenset({"distance_km", "distance"})


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance; enough for ranking partners a few dozen kilometres apart."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class FirmView:
    """A firm as shown once its identity may be seen."""

    id: int
    name: str
    siret: str
    naf_code: str | None
    contact_name: str | None
    contact_email: str | None
    contact_phone: str | None


@dataclass(frozen=True)
class PlaceView:
    """Where a listing is, as precisely as the viewer may know: "site" or "commune" precision."""

    commune_insee: str
    commune: str
    postal_code: str | None
    lat: float
    lon: float
    address: str | None
    precision: str


@dataclass(frozen=True)
class ListingView:
    """A listing with the hidden fields already removed (None) for this viewer."""

    id: int
    kind: Kind
    title: str
    description: str
    low_code: str | None
    material_family: str | None
    hazardous: bool
    accepts_hazardous: bool
    quantity: float
    unit: Unit
    frequency: Frequency
    lot_tonnes: float | None
    annual_tonnes: float | None
    radius_km: float | None
    available_from: date | None
    available_until: date | None
    anonymous: bool
    status: ListingStatus
    created_at: datetime | None
    updated_at: datetime | None
    published_at: datetime | None
    mine: bool
    identity_hidden: bool
    firm: FirmView | None
    place: PlaceView
    price_eur_per_unit: float | None
    # The owner's own bookkeeping, shown to the owner only.
    reference: str | None = None
    site_id: int | None = None


def firm_view(firm: Firm, *, contact: bool = True) -> FirmView:
    return FirmView(
        id=firm.id,
        name=firm.name,
        siret=firm.siret,
        naf_code=firm.naf_code,
        contact_name=firm.contact_name if contact else None,
        contact_email=firm.contact_email if contact else None,
        contact_phone=firm.contact_phone if contact else None,
    )


@dataclass
class Audience:
    """One viewer (a signed-in user, or None for a visitor) and what they may see.

    Build it with `audience(session, user)`; it looks up, once and lazily, which firms the viewer's
    firm has an accepted match with and which listings it is paired with.
    """

    session: Session
    user: User | None
    _revealed: frozenset[int] | None = field(default=None, repr=False)
    _paired: frozenset[int] | None = field(default=None, repr=False)

    @property
    def firm_id(self) -> int | None:
        return self.user.firm_id if self.user is not None else None

    @property
    def sees_all(self) -> bool:
        return self.user is not None and self.user.role in STAFF_SEEING_IDENTITIES

    @property
    def revealed_firm_ids(self) -> frozenset[int]:
        """Firms with which the viewer's firm has a match accepted by both sides."""
        if self._revealed is None:
            self._revealed = frozenset(self._counterpart_firms(accepted_only=True))
        return self._revealed

    @property
    def paired_listing_ids(self) -> frozenset[int]:
        """Listings of other firms paired with one of the viewer's firm's listings (any status)."""
        if self._paired is None:
            if self.firm_id is None:
                self._paired = frozenset()
            else:
                offer, need = aliased(Listing), aliased(Listing)
                rows = self.session.execute(
                    select(Match.offer_id, Match.need_id, offer.firm_id, need.firm_id)
                    .join(offer, Match.offer_id == offer.id)
                    .join(need, Match.need_id == need.id)
                    .where(Match.id.in_(firm_match_ids(self.firm_id)))
                ).all()
                ids: set[int] = set()
                for offer_id, need_id, offer_firm, need_firm in rows:
                    if offer_firm != self.firm_id:
                        ids.add(offer_id)
                    if need_firm != self.firm_id:
                        ids.add(need_id)
                self._paired = frozenset(ids)
        return self._paired

    def _counterpart_firms(self, *, accepted_only: bool) -> set[int]:
        if self.firm_id is None:
            return set()
        offer, need = aliased(Listing), aliased(Listing)
        query = (
            select(offer.firm_id, need.firm_id)
            .select_from(Match)
            .join(offer, Match.offer_id == offer.id)
            .join(need, Match.need_id == need.id)
            .where(Match.id.in_(firm_match_ids(self.firm_id)))
        )
        if accepted_only:
            query = query.where(Match.status == MatchStatus.accepted)
        firms: set[int] = set()
        for offer_firm, need_firm in self.session.execute(query):
            firms.update((offer_firm, need_firm))
        firms.discard(self.firm_id)
        return firms

    # --- the decisions ------------------------------------------------------------------------

    def owns(self, listing: Listing) -> bool:
        return self.firm_id is not None and listing.firm_id == self.firm_id

    def shows_identity(self, listing: Listing) -> bool:
        """Firm identity, exact site and price: shown unless the listing is anonymous to this viewer."""
        return (
            not listing.anonymous
            or self.owns(listing)
            or self.sees_all
            or listing.firm_id in self.revealed_firm_ids
        )

    def shows_contact(self, listing: Listing) -> bool:
        """The firm's contact person, e-mail and phone: only once the two firms agreed on a match."""
        return self.owns(listing) or self.sees_all or listing.firm_id in self.revealed_firm_ids

    def can_see(self, listing: Listing) -> bool:
        """Whether the listing exists at all for this viewer (others' drafts and closed ones do not)."""
        return (
            listing.status is ListingStatus.published
            or self.owns(listing)
            or self.sees_all
            or listing.id in self.paired_listing_ids
        )

    def point(self, listing: Listing) -> tuple[float, float]:
        """The coordinates to compute with: the exact site, or the commune centroid when hidden."""
        if self.shows_identity(listing):
            return listing.site.lat, listing.site.lon
        commune = listing.site.commune
        return commune.lat, commune.lon

    def distance_km(self, listing: Listing, lat: float, lon: float) -> float:
        """Distance from a point to the listing as this viewer may know it, rounded to 100 m."""
        here = self.point(listing)
        return round(haversine_km(lat, lon, here[0], here[1]), 1)

    def distance_between(self, mine: Listing, other: Listing) -> float:
        """Distance between one of the viewer's listings (exact) and another one (as visible)."""
        return self.distance_km(other, mine.site.lat, mine.site.lon)

    def attributable(self, listings: Iterable[Listing]) -> list[Listing]:
        """Listings that may be shown under their firm's name (e.g. on a firm's page): listing an
        anonymous one there would reveal whose it is."""
        return [listing for listing in listings if self.shows_identity(listing)]

    def view(self, listing: Listing) -> ListingView:
        shown = self.shows_identity(listing)
        mine = self.owns(listing)
        if shown and listing.anonymous and self.sees_all and not mine:
            self.session.info.setdefault(DISCLOSED, set()).add(listing.id)
        site, commune = listing.site, listing.site.commune
        postal = commune.postal_codes.split()[0] if commune.postal_codes else None
        if shown:
            place = PlaceView(commune.insee, commune.name, postal, site.lat, site.lon, site.address, "site")
        else:
            place = PlaceView(commune.insee, commune.name, postal, commune.lat, commune.lon, None, "commune")
        return ListingView(
            id=listing.id,
            kind=listing.kind,
            title=listing.title,
            description=listing.description or "",
            low_code=listing.low_code,
            material_family=listing.material_family,
            hazardous=bool(listing.hazardous),
            accepts_hazardous=bool(listing.accepts_hazardous),
            quantity=listing.quantity,
            unit=listing.unit,
            frequency=listing.frequency,
            lot_tonnes=listing.lot_tonnes,
            annual_tonnes=listing.annual_tonnes,
            radius_km=listing.radius_km,
            available_from=listing.available_from,
            available_until=listing.available_until,
            anonymous=bool(listing.anonymous),
            status=listing.status,
            created_at=listing.created_at,
            updated_at=listing.updated_at,
            published_at=listing.published_at,
            mine=mine,
            identity_hidden=not shown,
            firm=firm_view(listing.firm, contact=self.shows_contact(listing)) if shown else None,
            place=place,
            price_eur_per_unit=listing.price_eur_per_unit if shown else None,
            reference=listing.reference if mine else None,
            site_id=listing.site_id if mine else None,
        )

    def explanation(self, explanation: Mapping[str, Any] | None, other: Listing,
                    distance_km: float | None) -> dict[str, Any]:
        """An engine explanation about `other`, without what would name or locate a hidden firm."""
        data = dict(explanation or {})
        if self.shows_identity(other):
            return data
        scrubbed: dict[str, Any] = _scrub(data, distance_km)
        return scrubbed


def _scrub(value: Any, distance_km: float | None) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _REVEALING_KEYS:
                continue
            out[key] = distance_km if key in _DISTANCE_KEYS else _scrub(item, distance_km)
        return out
    if isinstance(value, list):
        return [_scrub(item, distance_km) for item in value]
    return value


def take_disclosed(session: Session) -> set[int]:
    """Ids of anonymous listings shown in full to CCMA staff since the last call (then forgotten)."""
    found: set[int] = session.info.pop(DISCLOSED, set())
    return found


def audience(session: Session, user: User | None) -> Audience:
    """What `user` (None: a visitor not signed in) may see, for the length of one request."""
    return Audience(session, user)


def visible_listing(session: Session, user: User | None, listing_id: int) -> Listing:
    """The listing if this viewer may see it; NotFound otherwise (so ids reveal nothing)."""
    listing = session.get(Listing, listing_id)
    if listing is None or not audience(session, user).can_see(listing):
        raise NotFound(f"listing {listing_id}")
    return listing


def own_listing(session: Session, user: User | None, listing_id: int) -> Listing:
    """The listing if it belongs to the viewer's firm; NotFound for everyone else, staff included."""
    listing = session.get(Listing, listing_id)
    if listing is None or user is None or user.firm_id is None or listing.firm_id != user.firm_id:
        raise NotFound(f"listing {listing_id}")
    return listing
