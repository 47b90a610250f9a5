"""Fill the load-test database: firms spread over the communes of Mayenne, Orne and Sarthe, their
listings written the way firms write them (the engine benchmark's generator), matches for the firms
the load test signs in as, and one account with an API token for each of those firms.

    DATABASE_URL=postgresql://… python tests/load/populate.py --listings 10000 --accounts 60 --out DIR

Listings go through the same service as the web form and the API (checks, derived tonnages, outbox
event); the outbox events of this initial load are marked done so that the worker starts idle.
Writes DIR/accounts.json for the locustfile.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

from sqlalchemy import insert, select, text, update

from matchmaking.app import create_app
from matchmaking.extensions import db
from matchmaking.matching.bench import ALL_NAF, generate
from matchmaking.models import Commune, Firm, Listing, LowCode, Match, MaterialFamily, OutboxEvent, OutboxStatus
from matchmaking.services import firms, listings, matching, seeding, tokens, users

PASSWORD = "charge-de-test-avaloirs"
ACTIVITIES = ("Scierie", "Menuiserie", "Garage", "Carrosserie", "Fromagerie", "Laiterie", "Brasserie", "Abattoir",
              "Plasturgie", "Imprimerie", "Métallerie", "Fonderie", "Transports", "Palettes", "Cartonnerie",
              "Maraîchage", "Élevage", "Chaudronnerie", "Verrerie", "Textiles", "Boulangerie", "Négoce bois",
              "Recyclage", "BTP", "Paysagiste", "Cidrerie", "Conserverie", "Mécanique", "Tannerie", "Cycles")


def luhn_siret(prefix: str) -> str:
    for last in "0123456789":
        digits = prefix + last
        total = sum((d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d
                    for i, d in enumerate(int(c) for c in reversed(digits)))
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def _quantity(lot_tonnes: float | None, rng: random.Random) -> tuple[float, str]:
    if lot_tonnes is None:
        return rng.choice([(1.0, "t"), (20.0, "unit"), (5.0, "m3"), (200.0, "L")])
    if lot_tonnes < 1:
        return round(max(lot_tonnes * 1000, 1), 1), "kg"
    return round(lot_tonnes, 2), "t"


def populate(n_listings: int, n_firms: int, n_accounts: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    session = db.session
    seeding.load_reference(session)
    session.commit()
    communes = list(session.scalars(select(Commune).where(Commune.department.in_(["53", "61", "72"]))))
    weights = [math.sqrt(c.population or 100) for c in communes]
    sample = [c.insee for c in rng.sample(communes, 40)]
    known_codes = set(session.scalars(select(LowCode.code).where(LowCode.level == "entry")))
    known_families = set(session.scalars(select(MaterialFamily.slug)))

    started = time.monotonic()
    firm_ids: list[int] = []
    for i in range(n_firms):
        commune = rng.choices(communes, weights=weights)[0]
        firm = firms.register_firm(session, {
            "name": f"{rng.choice(ACTIVITIES)} {commune.name} {i + 1}",
            "siret": luhn_siret(f"{800000000 + i:09d}0001"),
            "naf_code": rng.choice(ALL_NAF),
            "commune_insee": commune.insee,
            "contact_email": f"contact{i + 1}@charge.example.fr",
        })
        site = firm.sites[0]
        site.lat, site.lon = commune.lat + rng.gauss(0, 0.01), commune.lon + rng.gauss(0, 0.015)
        firm_ids.append(firm.id)
    session.commit()
    print(f"{n_firms} firms in {time.monotonic() - started:.0f} s", flush=True)

    offers = n_listings // 2
    generated = generate(offers, n_listings - offers, seed)
    rng.shuffle(generated)
    started = time.monotonic()
    by_firm = {firm_id: session.get(Firm, firm_id) for firm_id in firm_ids}
    for i, record in enumerate(generated):
        firm = by_firm[firm_ids[i % n_firms]]
        quantity, unit = _quantity(record.lot_tonnes, rng)
        data = {
            "kind": record.kind, "title": record.title[:200], "description": record.description,
            "low_code": record.low_code if record.low_code in known_codes else None,
            "material_family": record.family if record.family in known_families else None,
            "quantity": quantity, "unit": unit, "frequency": record.frequency or "once",
            "radius_km": record.radius_km, "accepts_hazardous": record.accepts_hazardous,
            "anonymous": rng.random() < 0.15,
            "price_eur_per_unit": round(rng.uniform(0, 80), 2) if rng.random() < 0.3 else None,
        }
        listings.create_listing(session, firm, data, publish=True)
        if i % 500 == 499:
            session.commit()
            session.expunge_all()
            by_firm = {firm_id: session.get(Firm, firm_id) for firm_id in firm_ids}
    session.commit()
    print(f"{n_listings} listings in {time.monotonic() - started:.0f} s", flush=True)
    # The initial load is history: the worker starts idle and only works on what the test publishes.
    session.execute(update(OutboxEvent).where(OutboxEvent.status == OutboxStatus.pending)
                    .values(status=OutboxStatus.done))
    session.commit()

    # Every listing's best matches, as the weekly full rematch leaves them (the engine's bulk path;
    # the explanations of these background pairs are left empty) ...
    started = time.monotonic()
    matching.reset_index()
    index = matching.current_index(session)
    firm_of: dict[int, int] = {}
    offers: set[int] = set()
    for listing_id, firm_id, kind in session.execute(select(Listing.id, Listing.firm_id, Listing.kind)):
        firm_of[listing_id] = firm_id
        if kind.value == "offer":
            offers.add(listing_id)
    pairs: dict[tuple[int, int], float] = {}
    for listing_id, top in index.rematch_all(k=10).items():
        for other_id, score in top:
            offer_id, need_id = (listing_id, other_id) if listing_id in offers else (other_id, listing_id)
            if firm_of.get(offer_id) != firm_of.get(need_id):
                pairs[(offer_id, need_id)] = round(min(max(score, 0.0), 1.0), 6)
    rows = [{"offer_id": o, "need_id": n, "score": s, "explanation": {}} for (o, n), s in pairs.items()]
    for chunk in range(0, len(rows), 5000):
        session.execute(insert(Match), rows[chunk:chunk + 5000])
    session.commit()
    print(f"{len(rows)} matches from the full rematch in {time.monotonic() - started:.0f} s", flush=True)

    # ... and, for the firms the test signs in as, their matches as the worker writes them.
    started = time.monotonic()
    account_firms = firm_ids[:n_accounts]
    mine = list(session.scalars(select(Listing.id).where(Listing.firm_id.in_(account_firms))))
    for listing_id in mine:
        matching.refresh_matches(session, listing_id)
    session.commit()
    print(f"matches for {len(mine)} listings in {time.monotonic() - started:.0f} s", flush=True)

    accounts = []
    for n, firm_id in enumerate(account_firms):
        firm = session.get(Firm, firm_id)
        assert firm is not None
        user = users.create_user(session, email=f"charge{n + 1}@charge.example.fr", password=PASSWORD,
                                 role="member", firm=firm, name=f"Compte de charge {n + 1}")
        accounts.append({"email": user.email, "password": PASSWORD, "token": tokens.issue(session, user, "load"),
                         "firm_id": firm_id})
    session.commit()
    engine = session.get_bind().engine
    if engine.dialect.name == "postgresql":
        # What autovacuum does within a minute of such a load: planner statistics, and the visibility
        # map that lets a count be answered from an index (VACUUM runs outside a transaction).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    public_ids = list(session.scalars(select(Listing.public_id).order_by(Listing.id)))
    return {"accounts": accounts, "listing_ids": public_ids,
            "communes": sample}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--firms", type=int, default=1_000)
    parser.add_argument("--accounts", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    app = create_app()
    with app.app_context():
        world = populate(args.listings, args.firms, args.accounts, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accounts.json").write_text(json.dumps(world, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
