"""A firm's profile and its sites (each located by its commune)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Commune, Firm, Listing, Site
from . import audit, places, verification
from . import validation as v
from .errors import Conflict, ValidationError

MAX_SITES = 50


def update_firm(session: Session, firm: Firm, data: Mapping[str, Any]) -> Firm:
    """Name, NAF code and contact; the SIRET identifies the firm and does not change here."""
    errors = v.Collector()
    name = errors.check("name", v.text, data.get("name"), max_length=200, required=True)
    naf_code = errors.check("naf_code", v.naf, data.get("naf_code"))
    contact_name = errors.check("contact_name", v.text, data.get("contact_name"), max_length=120)
    contact_email = None
    if data.get("contact_email"):
        contact_email = errors.check("contact_email", v.email, data.get("contact_email"))
    contact_phone = errors.check("contact_phone", v.text, data.get("contact_phone"), max_length=30)
    errors.raise_if_any()
    if name != firm.name and firm.verified_at is not None:
        # The CCMA checked the firm under its old name: the mark waits for a facilitator to look again.
        firm.verified_at = None
        audit.record(session, None, verification.FIRM_UNVERIFIED, "firm", firm.id, reason="renamed", old_name=firm.name)
    firm.name = name
    firm.naf_code = naf_code
    firm.contact_name = contact_name or None
    firm.contact_email = contact_email
    firm.contact_phone = contact_phone or None
    session.flush()
    return firm


def _commune(session: Session, data: Mapping[str, Any], errors: v.Collector) -> Commune | None:
    if data.get("commune_insee"):
        commune: Commune | None = errors.check("commune_insee", places.commune_by_insee, session,
                                               data["commune_insee"])
        return commune
    found: Commune | None = errors.check(
        "postal_code", places.commune_by_postal_code, session, data.get("postal_code"), data.get("commune")
    )
    return found


def _clean_site(session: Session, data: Mapping[str, Any]) -> tuple[str, str | None, Commune]:
    errors = v.Collector()
    name = errors.check("name", v.text, data.get("name"), max_length=120)
    address = errors.check("address", v.text, data.get("address"), max_length=250)
    commune = _commune(session, data, errors)
    errors.raise_if_any()
    assert commune is not None
    return name or commune.name, address or None, commune


def add_site(session: Session, firm: Firm, data: Mapping[str, Any]) -> Site:
    name, address, commune = _clean_site(session, data)
    if len(firm.sites) >= MAX_SITES:
        raise ValidationError({"name": _l("A firm has at most %(n)s sites.", n=MAX_SITES)})
    site = Site(firm=firm, name=name, address=address, commune_insee=commune.insee,
                lat=commune.lat, lon=commune.lon, is_main=not firm.sites)
    session.add(site)
    session.flush()
    return site


def update_site(session: Session, site: Site, data: Mapping[str, Any]) -> Site:
    """Rename, re-address or move a site; a move relocates its listings with it."""
    name, address, commune = _clean_site(session, data)
    site.name = name
    site.address = address
    if commune.insee != site.commune_insee:
        site.commune_insee = commune.insee
        site.lat, site.lon = commune.lat, commune.lon
    session.flush()
    return site


def make_main(session: Session, site: Site) -> Site:
    for other in site.firm.sites:
        other.is_main = other.id == site.id
    session.flush()
    return site


def delete_site(session: Session, site: Site) -> None:
    """Only a site with no listing and not the firm's last one can go (listings keep their place)."""
    firm = site.firm
    if len(firm.sites) <= 1:
        raise Conflict(_l("A firm keeps at least one site."))
    in_use = session.scalar(select(func.count()).select_from(Listing).where(Listing.site_id == site.id)) or 0
    if in_use:
        raise Conflict(_l("Listings are attached to this site: move or close them first."))
    was_main = site.is_main
    firm.sites.remove(site)
    session.delete(site)
    if was_main and firm.sites:
        firm.sites[0].is_main = True
    session.flush()


def firm_site(firm: Firm, site_id: object) -> Site | None:
    """One of the firm's sites by id, or None (another firm's site is as good as missing)."""
    return next((s for s in firm.sites if str(s.id) == str(site_id)), None)
