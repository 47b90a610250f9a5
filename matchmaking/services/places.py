"""Communes and sites: where a firm is, from what a person types."""

from __future__ import annotations

import unicodedata

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Commune, Firm, Site
from .validation import FieldError


def _fold(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return " ".join(plain.replace("-", " ").replace("'", " ").split()).replace("saint ", "st ")


def commune_by_insee(session: Session, insee: object) -> Commune:
    code = str(insee or "").strip()
    commune = session.get(Commune, code) if code else None
    if commune is None:
        raise FieldError(_l("Unknown commune: the INSEE code must be one of Mayenne, Orne or Sarthe."))
    return commune


def commune_by_postal_code(session: Session, postal_code: object, name: object) -> Commune:
    code = str(postal_code or "").strip()
    if not code:
        raise FieldError(_l("Give the commune (INSEE code) or its postal code and name."))
    candidates = [
        c for c in session.scalars(select(Commune).where(Commune.postal_codes.contains(code)))
        if code in c.postal_codes.split()
    ]
    if not candidates:
        raise FieldError(_l("Unknown postal code in Mayenne, Orne or Sarthe."))
    if len(candidates) == 1 and not name:
        return candidates[0]
    wanted = _fold(str(name or ""))
    for commune in candidates:
        if _fold(commune.name) == wanted:
            return commune
    raise FieldError(_l("No commune of that name has this postal code."))


def site_for_commune(session: Session, firm: Firm, commune: Commune, address: str | None = None) -> Site:
    """The firm's site in that commune, created at the commune centroid when it has none."""
    for site in firm.sites:
        if site.commune_insee == commune.insee:
            return site
    site = Site(
        firm=firm,
        name=commune.name,
        commune_insee=commune.insee,
        address=address,
        lat=commune.lat,
        lon=commune.lon,
        is_main=not firm.sites,
    )
    session.add(site)
    session.flush()
    return site
