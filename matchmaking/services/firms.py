"""Firms and their sites."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Firm, Site
from . import places
from . import validation as v


def _locate(session: Session, data: Mapping[str, Any], errors: v.Collector, prefix: str) -> Any:
    if data.get("commune_insee"):
        return errors.check(prefix + "commune_insee", places.commune_by_insee, session, data["commune_insee"])
    return errors.check(
        prefix + "postal_code", places.commune_by_postal_code, session, data.get("postal_code"), data.get("commune")
    )


def register_firm(session: Session, data: Mapping[str, Any], *, prefix: str = "", demo: bool = False) -> Firm:
    """A firm with its main site; every field checked before anything is written."""
    if not isinstance(data, Mapping):
        raise v.FieldError(_l("Expected an object."))
    errors = v.Collector()
    name = errors.check(prefix + "name", v.text, data.get("name"), max_length=200, required=True)
    siret = errors.check(prefix + "siret", v.siret, data.get("siret"))
    naf_code = errors.check(prefix + "naf_code", v.naf, data.get("naf_code"))
    address = errors.check(prefix + "address", v.text, data.get("address"), max_length=250)
    contact_name = errors.check(prefix + "contact_name", v.text, data.get("contact_name"), max_length=120)
    contact_email = None
    if data.get("contact_email"):
        contact_email = errors.check(prefix + "contact_email", v.email, data.get("contact_email"))
    contact_phone = errors.check(prefix + "contact_phone", v.text, data.get("contact_phone"), max_length=30)
    commune = _locate(session, data, errors, prefix)
    if siret and session.scalar(select(Firm.id).where(Firm.siret == siret)):
        errors.add(prefix + "siret", _l("A firm with this SIRET number is already registered."))
    errors.raise_if_any()

    firm = Firm(
        name=name,
        siret=siret,
        naf_code=naf_code,
        contact_name=contact_name or None,
        contact_email=contact_email,
        contact_phone=contact_phone or None,
        demo=demo,
    )
    session.add(firm)
    session.flush()
    site = Site(
        firm=firm,
        name=commune.name,
        commune_insee=commune.insee,
        address=address or None,
        lat=commune.lat,
        lon=commune.lon,
        is_main=True,
    )
    session.add(site)
    session.flush()
    return firm
