"""What a viewer may see of a listing or a firm: the single place that decides it.

The rule: an *anonymous* listing of another firm shows no firm identity, no exact location and no
price, until a match between the viewer's firm and the listing's firm has been accepted by both.
Its location is an *area* that at least k firms (``ANONYMITY_K``, 5 by default) have sites in:
its commune when the commune has k firms, else the CCMA territory (communes of the CCMA), else
its department, else the whole area served. The area's centroid stands in for coordinates and for
every distance, and a distance to a wider area than a commune is rounded to that area's step
(5 km for the territory, 10 km for a department, 20 km beyond): a commune where a firm sits alone,
or with few others, would otherwise name it to anyone who knows which firms are there.
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

Nor may the *order* of things place a hidden listing among its firm's named ones. Listings created
together (one import, one afternoon) have neighbouring integer ids and times microseconds apart, so
the integer id never leaves the database: a listing or a match is known by its random `public_id`
(models.new_public_id) in URLs, the API, e-mails and webhooks; an anonymous listing's times are told
to the day (`audience.time`) to whoever may not see its firm; and lists that mix firms are ordered
by day, score or status, then by public id (services/queries.py `mixed_order`), never by creation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from ..matching.geo import HALF_DECAY_KM
from ..models import (
    Commune,
    Firm,
    Frequency,
    Kind,
    Listing,
    ListingStatus,
    Match,
    MatchStatus,
    Role,
    Site,
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
ANONYMITY_K = 5
TERRITORY_NAME = "Communauté de communes du Mont des Avaloirs"
DEPARTMENT_NAMES = {"53": "Mayenne", "61": "Orne", "72": "Sarthe"}
ALL_AREA_NAME = "Mayenne, Orne et Sarthe"
# How finely a distance to an area is told: a commune's to 100 m (its centroid), wider ones coarser.
AREA_STEP_KM = {"commune": 0.1, "territory": 5.0, "department": 10.0, "region": 20.0}
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
    verified: bool = False  # checked by a CCMA facilitator (services/verification.py)


@dataclass(frozen=True)
class Area:
    """Where an anonymous listing is said to be: a commune or a wider area, with its centroid."""

    code: str  # the commune's INSEE code, "ccma", the department's number, or "all"
    name: str
    level: str  # "commune", "territory", "department" or "region"
    lat: float
    lon: float
    firms: int  # firms with a site in it

    @property
    def step_km(self) -> float:
        return AREA_STEP_KM[self.level]

    def round_km(self, km: float) -> float:
        """A distance as precisely as this area allows (never 0 for an area wider than a commune)."""
        if self.level == "commune":
            return round(km, 1)
        return max(self.step_km, round(km / self.step_km) * self.step_km)


@dataclass(frozen=True)
class PlaceView:
    """Where a listing is, as precisely as the viewer may know: "site", "commune" or a wider area
    ("territory", "department", "region": commune_insee and postal_code are then None)."""

    commune_insee: str | None
    commune: str
    postal_code: str | None
    lat: float
    lon: float
    address: str | None
    precision: str


@dataclass(frozen=True)
class ListingView:
    """A listing with the hidden fields already removed (None) for this viewer."""

    id: str  # the public id: the integer one stays internal
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
    # Exact, or only the day (a date) when the listing is anonymous to this viewer (Audience.time).
    created_at: datetime | date | None
    updated_at: datetime | date | None
    published_at: datetime | date | None
    mine: bool
    identity_hidden: bool
    firm: FirmView | None
    place: PlaceView
    price_eur_per_unit: float | None
    # The owner's own bookkeeping, shown to the owner only.
    reference: str | None = None
    site_id: int | None = None
    # What other firms see of the place of the owner's anonymous listing (owner only).
    public_place: PlaceView | None = None


def firm_view(firm: Firm, *, contact: bool = True) -> FirmView:
    return FirmView(
        id=firm.id,
        name=firm.name,
        siret=firm.siret,
        naf_code=firm.naf_code,
        contact_name=firm.contact_name if contact else None,
        contact_email=firm.contact_email if contact else None,
        contact_phone=firm.contact_phone if contact else None,
        verified=firm.verified_at is not None,
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
    k: int = ANONYMITY_K
    _geography: _Geography | None = field(default=None, repr=False)

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

    def time(self, listing: Listing, value: datetime | None) -> datetime | date | None:
        """A time about `listing` (its creation, a change, the match it is in) as this viewer may
        know it: the instant when the firm is shown to them, else only the day (UTC). Instants
        microseconds apart would tie an anonymous listing to the named ones its firm made with it."""
        if value is None or self.shows_identity(listing):
            return value
        return value.astimezone(UTC).date()

    def can_see(self, listing: Listing) -> bool:
        """Whether the listing exists at all for this viewer (others' drafts and closed ones do not)."""
        return (
            listing.status is ListingStatus.published
            or self.owns(listing)
            or self.sees_all
            or listing.id in self.paired_listing_ids
        )

    def area(self, listing: Listing) -> Area:
        """The smallest area around the listing's commune that at least k firms have sites in."""
        if self._geography is None:
            self._geography = _Geography.load(self.session)
        return self._geography.area(listing.site.commune, self.k)

    def point(self, listing: Listing) -> tuple[float, float]:
        """The coordinates to compute with: the exact site, or its area's centroid when hidden."""
        if self.shows_identity(listing):
            return listing.site.lat, listing.site.lon
        area = self.area(listing)
        return area.lat, area.lon

    def distance_km(self, listing: Listing, lat: float, lon: float) -> float:
        """Distance from a point to the listing as this viewer may know it: to 100 m from a site or
        a commune's centroid, to the area's step from a wider area's."""
        here = self.point(listing)
        km = haversine_km(lat, lon, here[0], here[1])
        if self.shows_identity(listing):
            return round(km, 1)
        return self.area(listing).round_km(km)

    def public_place(self, listing: Listing) -> PlaceView:
        """The place of an anonymous listing as a firm that may not see it exactly sees it."""
        area = self.area(listing)
        commune = listing.site.commune
        if area.level == "commune":
            postal = commune.postal_codes.split()[0] if commune.postal_codes else None
            return PlaceView(commune.insee, commune.name, postal, area.lat, area.lon, None, "commune")
        return PlaceView(None, area.name, None, area.lat, area.lon, None, area.level)

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
            place = self.public_place(listing)
        return ListingView(
            id=listing.public_id,
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
            created_at=self.time(listing, listing.created_at),
            updated_at=self.time(listing, listing.updated_at),
            published_at=self.time(listing, listing.published_at),
            mine=mine,
            identity_hidden=not shown,
            firm=firm_view(listing.firm, contact=self.shows_contact(listing)) if shown else None,
            place=place,
            price_eur_per_unit=listing.price_eur_per_unit if shown else None,
            reference=listing.reference if mine else None,
            site_id=listing.site_id if mine else None,
            public_place=self.public_place(listing) if mine and listing.anonymous else None,
        )

    def explanation(self, explanation: Mapping[str, Any] | None, other: Listing,
                    distance_km: float | None) -> dict[str, Any]:
        """An engine explanation about `other`, without what would name or locate a hidden firm."""
        data = dict(explanation or {})
        if self.shows_identity(other):
            return data
        scrubbed: dict[str, Any] = _scrub(data, distance_km)
        return scrubbed


_KM_IN_PHRASE = re.compile(r"\d+(?:[.,]\d+)? km")


def _scrub(value: Any, distance_km: float | None) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _REVEALING_KEYS:
                continue
            if key in _DISTANCE_KEYS:
                out[key] = distance_km
            elif key in ("phrase_fr", "phrase_en") and isinstance(item, str):
                # The engine's phrase gives its own distance ("12 km"): the viewer's replaces it.
                shown = "" if distance_km is None else f"{distance_km:.0f} km"
                out[key] = " · ".join(p for p in (_KM_IN_PHRASE.sub(shown, part) for part in item.split(" · ")) if p)
            elif key == "raw" and value.get("name") == "distance" and distance_km is not None:
                out[key] = 1.0 / (1.0 + distance_km / HALF_DECAY_KM)
            else:
                out[key] = _scrub(item, distance_km)
        return out
    if isinstance(value, list):
        return [_scrub(item, distance_km) for item in value]
    return value


@dataclass
class _Geography:
    """Which firms have sites in each commune and each wider area, and the areas' centroids."""

    communes: dict[str, set[int]]
    territory: set[int]
    departments: dict[str, set[int]]
    everyone: set[int]
    centroids: dict[str, tuple[float, float]]

    @classmethod
    def load(cls, session: Session) -> _Geography:
        communes: dict[str, set[int]] = {}
        departments: dict[str, set[int]] = {}
        territory: set[int] = set()
        everyone: set[int] = set()
        rows = session.execute(select(Site.firm_id, Commune.insee, Commune.ccma, Commune.department)
                               .join(Commune, Site.commune_insee == Commune.insee).distinct())
        for firm_id, insee, ccma, department in rows:
            communes.setdefault(insee, set()).add(firm_id)
            departments.setdefault(department, set()).add(firm_id)
            everyone.add(firm_id)
            if ccma:
                territory.add(firm_id)
        centroids: dict[str, tuple[float, float]] = {}
        for key, lat, lon in session.execute(
                select(Commune.department, func.avg(Commune.lat), func.avg(Commune.lon)).group_by(Commune.department)):
            centroids[key] = (float(lat), float(lon))
        middle = session.execute(select(func.avg(Commune.lat), func.avg(Commune.lon))
                                 .where(Commune.ccma.is_(True))).one()
        if middle[0] is not None:
            centroids["ccma"] = (float(middle[0]), float(middle[1]))
        whole = session.execute(select(func.avg(Commune.lat), func.avg(Commune.lon))).one()
        centroids["all"] = (float(whole[0] or 0.0), float(whole[1] or 0.0))
        return cls(communes, territory, departments, everyone, centroids)

    def area(self, commune: Commune, k: int) -> Area:
        firms = len(self.communes.get(commune.insee, ()))
        if firms >= k:
            return Area(commune.insee, commune.name, "commune", commune.lat, commune.lon, firms)
        if commune.ccma and "ccma" in self.centroids and len(self.territory) >= k:
            return Area("ccma", TERRITORY_NAME, "territory", *self.centroids["ccma"], len(self.territory))
        department = self.departments.get(commune.department, set())
        if len(department) >= k and commune.department in self.centroids:
            name = DEPARTMENT_NAMES.get(commune.department, commune.department)
            return Area(commune.department, name, "department", *self.centroids[commune.department], len(department))
        return Area("all", ALL_AREA_NAME, "region", *self.centroids["all"], len(self.everyone))


def take_disclosed(session: Session) -> set[int]:
    """Ids of anonymous listings shown in full to CCMA staff since the last call (then forgotten)."""
    found: set[int] = session.info.pop(DISCLOSED, set())
    return found


def audience(session: Session, user: User | None, k: int | None = None) -> Audience:
    """What `user` (None: a visitor not signed in) may see, for the length of one request; `k`
    defaults to the application's ANONYMITY_K setting."""
    if k is None:
        k = int(current_app.config.get("ANONYMITY_K", ANONYMITY_K)) if has_app_context() else ANONYMITY_K
    return Audience(session, user, k=max(1, k))


def listing_by_public_id(session: Session, public_id: str) -> Listing | None:
    return session.scalar(select(Listing).where(Listing.public_id == public_id))


def visible_listing(session: Session, user: User | None, public_id: str) -> Listing:
    """The listing if this viewer may see it; NotFound otherwise (so ids reveal nothing)."""
    listing = listing_by_public_id(session, public_id)
    if listing is None or not audience(session, user).can_see(listing):
        raise NotFound(f"listing {public_id}")
    return listing


def own_listing(session: Session, user: User | None, public_id: str) -> Listing:
    """The listing if it belongs to the viewer's firm; NotFound for everyone else, staff included."""
    listing = listing_by_public_id(session, public_id)
    if listing is None or user is None or user.firm_id is None or listing.firm_id != user.firm_id:
        raise NotFound(f"listing {public_id}")
    return listing
