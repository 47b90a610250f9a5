"""Offers and needs: validation, derived quantities, creation and publication."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..models import Firm, Frequency, Kind, Listing, ListingStatus, LowCode, Match, MaterialFamily, Unit, User, utcnow
from . import outbox, places, verification
from . import validation as v

TITLE_MAX = 200
DESCRIPTION_MAX = 5000
RADIUS_MAX_KM = 1000.0
# Per occurrence: a single lot above this is a typing error, not a by-product of a CCMA firm.
MAX_TONNES_PER_LOT = 100_000.0
MAX_UNITS_PER_LOT = 10_000_000.0
MAX_PRICE_EUR = 1_000_000.0
DEFAULT_NEED_RADIUS_KM = 50.0
SUGGESTION_MIN_SCORE = 0.4

TONNES_PER = {Unit.t: 1.0, Unit.kg: 0.001}
OCCURRENCES_PER_YEAR = {
    Frequency.once: 1,
    Frequency.weekly: 52,
    Frequency.monthly: 12,
    Frequency.quarterly: 4,
    Frequency.yearly: 1,
}

UNIT_SPELLINGS = {u.value: u.value for u in Unit} | {
    "tonne": "t", "tonnes": "t", "T": "t", "kilo": "kg", "kilos": "kg", "KG": "kg", "m³": "m3", "M3": "m3",
    "l": "L", "litre": "L", "litres": "L", "u": "unit", "unité": "unit", "unités": "unit", "pièce": "unit",
    "pièces": "unit", "pcs": "unit",
}
FREQUENCY_SPELLINGS = {f.value: f.value for f in Frequency} | {
    "ponctuel": "once", "une fois": "once", "hebdomadaire": "weekly", "mensuel": "monthly",
    "trimestriel": "quarterly", "annuel": "yearly",
}


def lot_tonnes(quantity: float, unit: Unit, density_t_per_m3: float | None) -> float | None:
    """One occurrence in tonnes, when the unit allows it (volumes need the family's density)."""
    if unit in TONNES_PER:
        return quantity * TONNES_PER[unit]
    if density_t_per_m3 is None:
        return None
    if unit is Unit.m3:
        return quantity * density_t_per_m3
    if unit is Unit.L:
        return quantity / 1000 * density_t_per_m3
    return None


def annual_tonnes(lot: float | None, frequency: Frequency) -> float | None:
    return None if lot is None else lot * OCCURRENCES_PER_YEAR[frequency]


def _low_code(session: Session, value: Any) -> LowCode | None:
    from ..matching.nomenclature import normalise_low_code

    if value is None or str(value).strip() == "":
        return None
    code = normalise_low_code(str(value))
    low = session.get(LowCode, code) if code else None
    if low is None or low.level != "entry":
        raise v.FieldError(_l("Unknown List of Waste code (expected six digits such as 16 01 03)."))
    return low


def _family(session: Session, value: Any) -> MaterialFamily | None:
    if value is None or str(value).strip() == "":
        return None
    family = session.get(MaterialFamily, str(value).strip())
    if family is None:
        raise v.FieldError(_l("Unknown material family."))
    return family


def _has_matches(session: Session, listing: Listing) -> bool:
    found = session.scalar(select(Match.id).where(or_(Match.offer_id == listing.id, Match.need_id == listing.id))
                           .limit(1))
    return found is not None


def clean_listing(session: Session, firm: Firm, data: Mapping[str, Any], *, partial: bool = False,
                  current: Listing | None = None) -> dict[str, Any]:
    """Check every field of a listing; return the values to store or raise ValidationError.

    With `partial`, only the fields present are checked (PATCH), against `current` for the rest.
    """
    if not isinstance(data, Mapping):
        raise v.FieldError(_l("Expected an object."))
    errors = v.Collector()
    out: dict[str, Any] = {}

    def present(field: str) -> bool:
        return not partial or field in data

    if present("kind"):
        kind = errors.check("kind", v.choice, data.get("kind"), {"offer": "offer", "need": "need",
                            "offre": "offer", "besoin": "need"}, _l("The kind is either offer or need."))
        if kind:
            out["kind"] = Kind(kind)
            if current is not None and out["kind"] is not current.kind and _has_matches(session, current):
                # Its matches pair it as what it was: an offer that became a need would sit on the
                # offer side of pairs with other needs.
                errors.add("kind", _l("This listing already has matches, so its kind can no longer change: "
                                      "close it and declare a new one."))
    if present("title"):
        out["title"] = errors.check("title", v.text, data.get("title"), max_length=TITLE_MAX, required=True)
    if present("description"):
        out["description"] = errors.check("description", v.text, data.get("description"),
                                          max_length=DESCRIPTION_MAX)
    if present("reference") and data.get("reference") not in (None, ""):
        out["reference"] = errors.check("reference", v.text, str(data.get("reference")), max_length=64)
    if present("low_code"):
        low = errors.check("low_code", _low_code, session, data.get("low_code"))
        out["low_code"] = low.code if low else None
        out["_low"] = low
    if present("material_family"):
        family = errors.check("material_family", _family, session, data.get("material_family"))
        out["material_family"] = family.slug if family else None
    if present("quantity"):
        out["quantity"] = errors.check("quantity", v.number, data.get("quantity"), strictly_positive=True)
    if present("unit"):
        unit = errors.check("unit", v.choice, data.get("unit"), UNIT_SPELLINGS,
                            _l("Unknown unit: use t, kg, m3, L or unit."))
        out["unit"] = Unit(unit) if unit else None
    if present("frequency"):
        frequency = errors.check("frequency", v.choice, data.get("frequency"), FREQUENCY_SPELLINGS,
                                 _l("Unknown frequency: use once, weekly, monthly, quarterly or yearly."))
        out["frequency"] = Frequency(frequency) if frequency else None
    if present("radius_km"):
        out["radius_km"] = errors.check("radius_km", v.number, data.get("radius_km"), required=False,
                                        strictly_positive=True, maximum=RADIUS_MAX_KM)
    for flag in ("hazardous", "accepts_hazardous", "anonymous"):
        if present(flag):
            out[flag] = errors.check(flag, v.boolean, data.get(flag))
    if present("price_eur_per_unit"):
        out["price_eur_per_unit"] = errors.check("price_eur_per_unit", v.number, data.get("price_eur_per_unit"),
                                                 required=False, minimum=0, maximum=MAX_PRICE_EUR)
    for field in ("available_from", "available_until"):
        if present(field):
            out[field] = errors.check(field, v.iso_date, data.get(field))
    if data.get("site_id") not in (None, ""):
        site = next((s for s in firm.sites if str(s.id) == str(data.get("site_id"))), None)
        if site is None:
            errors.add("site_id", _l("This site is not one of your firm's sites."))
        out["_site"] = site
    elif data.get("commune_insee") not in (None, ""):
        out["_commune"] = errors.check("commune_insee", places.commune_by_insee, session, data.get("commune_insee"))

    # Checks across fields, against the stored listing for a partial update.
    def value(field: str) -> Any:
        return out[field] if field in out else getattr(current, field, None)

    start, end = value("available_from"), value("available_until")
    if isinstance(start, date) and isinstance(end, date) and end < start:
        errors.add("available_until", _l("The end of availability comes before its start."))
    quantity, unit = value("quantity"), value("unit")
    if quantity and unit:
        limit = MAX_UNITS_PER_LOT if unit is Unit.unit else MAX_TONNES_PER_LOT
        in_tonnes = quantity * TONNES_PER.get(unit, 1.0) if unit is not Unit.unit else quantity
        if in_tonnes > limit:
            errors.add("quantity", _l("This quantity is not plausible for one lot; check the unit."))
    if value("kind") is Kind.offer and value("radius_km") is not None and "radius_km" in out:
        out["radius_km"] = None  # a search radius belongs to needs; offers are found by the buyer's radius
    errors.raise_if_any()
    return out


def _apply(session: Session, listing: Listing, values: dict[str, Any]) -> None:
    low: LowCode | None = values.pop("_low", None)
    site = values.pop("_site", None)
    commune = values.pop("_commune", None)
    for field, val in values.items():
        setattr(listing, field, val)
    if site is not None:
        listing.site = site
    elif commune is not None:
        listing.site = places.site_for_commune(session, listing.firm, commune)
    if low is not None:
        # The official code decides the hazard; a firm may flag more, never less.
        listing.hazardous = bool(listing.hazardous) or low.hazardous
        if not listing.material_family:
            listing.material_family = low.family_slug
    family = session.get(MaterialFamily, listing.material_family) if listing.material_family else None
    listing.lot_tonnes = lot_tonnes(listing.quantity, listing.unit, family.density_t_per_m3 if family else None)
    listing.annual_tonnes = annual_tonnes(listing.lot_tonnes, listing.frequency)


def suggest_classification(session: Session, values: dict[str, Any]) -> None:
    """Fill in the code and family a firm left empty, from its own words (it can change them).

    A code is only filled in when the suggestion is clear: a wrong code would carry a wrong
    hazard flag, while a missing one only costs a little matching precision.
    """
    from ..matching.taxonomy import suggest_codes

    if values.get("low_code") or values.get("material_family"):
        return
    suggestion = suggest_codes(f"{values.get('title') or ''} {values.get('description') or ''}", k=1)
    if suggestion.codes and suggestion.codes[0][1] >= SUGGESTION_MIN_SCORE:
        low = session.get(LowCode, suggestion.codes[0][0])
        if low is not None:
            values["low_code"], values["_low"] = low.code, low
    if suggestion.family and session.get(MaterialFamily, suggestion.family) is not None:
        values["material_family"] = suggestion.family


def create_listing(session: Session, firm: Firm, data: Mapping[str, Any], *, publish: bool = True,
                   by: User | None = None, flush: bool = True) -> Listing:
    """A new listing, published unless `publish` is False, and its outbox event. `by`, the member
    who asks, must have confirmed their e-mail address to publish (services/verification.py); CCMA
    staff keeping a listing for a firm, the demo and imports by the command line pass no one.

    `flush=False` (bulk imports): the listing is only added; the caller flushes many at once and
    then calls listing_created() for each.
    """
    if publish and by is not None:
        verification.require_confirmed(by)
    values = clean_listing(session, firm, data)
    suggest_classification(session, values)
    listing = Listing(firm=firm, status=ListingStatus.draft, description="")
    if firm.main_site is None:
        raise v.FieldError(_l("Your firm has no site yet."))
    listing.site = firm.main_site
    session.add(listing)
    _apply(session, listing, values)
    if listing.kind is Kind.need and listing.radius_km is None:
        listing.radius_km = DEFAULT_NEED_RADIUS_KM
    if publish:
        listing.status = ListingStatus.published
        listing.published_at = listing.confirmed_at = utcnow()
    if not flush:
        return listing
    session.flush()
    if publish:
        listing_changed(session, listing)
    return listing


def listing_created(session: Session, listing: Listing) -> None:
    """The event of a listing created with flush=False, once flushed, if it is published: no
    event can have its key yet, so it is added without a look-up and written with the next flush."""
    if listing.status is ListingStatus.published:
        listing_changed(session, listing, new=True)


def listing_changed(session: Session, listing: Listing, *, new: bool = False) -> None:
    """Tell the workers to (re)match this listing; one event per listing version."""
    outbox.emit(
        session,
        "listing.changed",
        {"listing_id": listing.id},
        f"listing.changed:{listing.id}:{listing.updated_at.isoformat() if listing.updated_at else ''}",
        new=new,
    )


def update_listing(session: Session, listing: Listing, data: Mapping[str, Any], *,
                   by: User | None = None) -> Listing:
    """Change a listing; changing what a published one says is publishing it anew (a confirmed `by`)."""
    if data and listing.status is ListingStatus.published and by is not None:
        verification.require_confirmed(by)
    values = clean_listing(session, listing.firm, data, partial=True, current=listing)
    _apply(session, listing, values)
    listing.confirmed_at = listing.updated_at = utcnow()
    session.flush()
    if listing.status is ListingStatus.published:
        listing_changed(session, listing)
    return listing


def set_status(session: Session, listing: Listing, status: ListingStatus, *, by: User | None = None) -> Listing:
    """Publish, pause, close or expire a listing; the workers hear of every change. Publishing
    asks for a confirmed member when `by` is given (as in create_listing)."""
    if listing.status is status:
        return listing
    if status is ListingStatus.published and by is not None:
        verification.require_confirmed(by)
    listing.status = status
    listing.updated_at = utcnow()
    if status is ListingStatus.published and listing.published_at is None:
        listing.published_at = listing.updated_at
    session.flush()
    listing_changed(session, listing)
    return listing
