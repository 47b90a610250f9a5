"""Loading what ships in seed/: nomenclatures, communes, and the fictitious CCMA demo territory.

Running any loader twice changes nothing.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..matching import nomenclature
from ..models import Base, Commune, Firm, Listing, LowCode, MaterialFamily, Role, User
from . import firms as firm_service
from . import listings as listing_service
from . import users as user_service

DEMO_PASSWORD = "avaloirs-demo"  # demo accounts only; the demo territory is fictitious


def _upsert(session: Session, model: type[Base], key: str, rows: list[dict[str, Any]]) -> int:
    """Insert missing rows and update changed ones; return how many were written."""
    existing = {getattr(obj, key): obj for obj in session.scalars(select(model))}
    written = 0
    for row in rows:
        obj = existing.get(row[key])
        if obj is None:
            session.add(model(**row))
            written += 1
        elif any(getattr(obj, field) != value for field, value in row.items()):
            for field, value in row.items():
                setattr(obj, field, value)
            written += 1
    session.flush()
    return written


def load_reference(session: Session) -> dict[str, int]:
    families = [
        {
            "slug": f.slug,
            "label_fr": f.label_fr,
            "label_en": f.label_en,
            "ewc_stat_code": f.ewc_stat_code,
            "ewc_stat_label_en": f.ewc_stat_label_en,
            "density_t_per_m3": f.density_t_per_m3,
        }
        for f in nomenclature.families()
    ]
    codes = [
        {
            "code": e.code,
            "level": e.level,
            "chapter": e.chapter,
            "subchapter": e.subchapter or None,
            "hazardous": e.hazardous,
            "label_fr": e.label_fr,
            "label_en": e.label_en,
            "family_slug": e.family or None,
        }
        for e in nomenclature.list_of_waste()
    ]
    communes = [
        {
            "insee": c.insee,
            "name": c.name,
            "postal_codes": " ".join(c.postal_codes),
            "lat": c.lat,
            "lon": c.lon,
            "department": c.department,
            "population": c.population,
            "ccma": c.ccma,
        }
        for c in nomenclature.communes()
    ]
    return {
        "material families": _upsert(session, MaterialFamily, "slug", families),
        "List of Waste codes": _upsert(session, LowCode, "code", codes),
        "communes": _upsert(session, Commune, "insee", communes),
    }


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_demo(session: Session, demo_dir: Path | None = None) -> dict[str, int]:
    """The fictitious CCMA territory: firms, one member account each, their listings."""
    demo_dir = demo_dir or nomenclature.seed_dir() / "demo"
    firms_by_ref: dict[str, Firm] = {}
    added_firms = added_listings = 0
    shared_hash: str | None = None  # one password for every demo account: hashed once
    for row in _read(demo_dir / "firms.csv"):
        firm = session.scalar(select(Firm).where(Firm.siret == row["siret"]))
        if firm is None:
            firm = firm_service.register_firm(session, row, demo=True)
            added_firms += 1
        firms_by_ref[row["ref"]] = firm
        if row.get("contact_email") and user_service.find_by_email(session, row["contact_email"]) is None:
            user = user_service.create_user(
                session, email=row["contact_email"], password=DEMO_PASSWORD, role=Role.member,
                firm=firm, name=row.get("contact_name") or None, password_hash=shared_hash,
            )
            shared_hash = user.password_hash
    existing = {
        (firm_id, reference)
        for firm_id, reference in session.execute(select(Listing.firm_id, Listing.reference))
    }
    for row in _read(demo_dir / "listings.csv"):
        firm = firms_by_ref[row["firm_ref"]]
        if (firm.id, row["ref"]) in existing:
            continue
        data: dict[str, Any] = {k: v for k, v in row.items() if k not in {"firm_ref", "ref"}}
        data["reference"] = row["ref"]
        listing_service.create_listing(session, firm, data)
        added_listings += 1
    return {"demo firms": added_firms, "demo listings": added_listings}


def demo_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).join(Firm).where(Firm.demo.is_(True)).order_by(User.id)))
