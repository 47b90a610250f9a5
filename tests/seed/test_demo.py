"""The fictitious CCMA demo territory shipped in seed/demo/."""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from matchmaking.matching import nomenclature as n

DEMO = Path(__file__).resolve().parents[2] / "seed" / "demo"


def _read(name: str) -> list[dict[str, str]]:
    with (DEMO / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def firms() -> list[dict[str, str]]:
    return _read("firms.csv")


@pytest.fixture(scope="module")
def listings() -> list[dict[str, str]]:
    return _read("listings.csv")


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def test_firms(firms: list[dict[str, str]]) -> None:
    assert list(firms[0]) == [
        "ref", "name", "siret", "naf_code", "sector", "commune_insee", "address",
        "contact_name", "contact_email", "contact_phone",
    ]  # fmt: skip
    assert len(firms) >= 40
    for column in ("ref", "name", "siret", "contact_email", "contact_phone"):
        assert len({f[column] for f in firms}) == len(firms), column
    ccma = {c.insee for c in n.communes() if c.ccma}
    for f in firms:
        assert re.fullmatch(r"\d{14}", f["siret"]) and _luhn(f["siret"]), f["ref"]
        assert _luhn(f["siret"][:9]), f"{f['ref']}: SIREN"
        assert not f["siret"].startswith("356000000")  # La Poste's SIREN follows another rule
        assert re.fullmatch(r"\d{2}\.\d{2}[A-Z]", f["naf_code"]), f["ref"]
        assert f["commune_insee"] in ccma, f["ref"]
        assert f["contact_email"].endswith("@example.fr")
        assert re.fullmatch(r"02 43( \d{2}){3}", f["contact_phone"]), f["ref"]
        assert f["name"] and f["sector"] and f["contact_name"]
    # spread over the territory, not piled in the main towns
    assert len({f["commune_insee"] for f in firms}) >= 20


def test_listings_fields(firms: list[dict[str, str]], listings: list[dict[str, str]]) -> None:
    assert list(listings[0]) == [
        "firm_ref", "ref", "kind", "title", "description", "low_code", "quantity", "unit", "frequency",
        "radius_km", "accepts_hazardous", "anonymous", "price_eur_per_unit", "available_from", "available_until",
    ]  # fmt: skip
    refs = {f["ref"] for f in firms}
    kinds = Counter(row["kind"] for row in listings)
    assert len(listings) >= 150
    assert kinds["offer"] >= 80 and kinds["need"] >= 60
    assert len({row["ref"] for row in listings}) == len(listings)
    assert {row["firm_ref"] for row in listings} == refs  # every firm has something to show
    for row in listings:
        ref = row["ref"]
        assert row["firm_ref"] in refs, ref
        assert row["title"].strip(), ref
        assert float(row["quantity"]) > 0, ref
        assert row["unit"] in {"t", "kg", "m3", "L", "unit"}, ref
        assert row["frequency"] in {"once", "weekly", "monthly", "quarterly", "yearly"}, ref
        assert row["accepts_hazardous"] in {"0", "1"} and row["anonymous"] in {"0", "1"}, ref
        if row["kind"] == "offer":
            assert row["radius_km"] == "" and row["accepts_hazardous"] == "0", ref
        else:
            assert float(row["radius_km"]) > 0, ref
        if row["low_code"]:
            assert n.normalise_low_code(row["low_code"]) is not None, ref
        if row["price_eur_per_unit"]:
            assert float(row["price_eur_per_unit"]) >= 0, ref
        start = date.fromisoformat(row["available_from"]) if row["available_from"] else None
        end = date.fromisoformat(row["available_until"]) if row["available_until"] else None
        if start and end:
            assert start <= end, ref
    assert 0 < sum(row["anonymous"] == "1" for row in listings) <= 10
    assert sum(row["low_code"] == "" for row in listings if row["kind"] == "need") > 40


def _find(listings: list[dict[str, str]], firms: list[dict[str, str]], naf: str, kind: str, word: str) -> list[str]:
    by_ref = {f["ref"]: f for f in firms}
    return [
        row["ref"]
        for row in listings
        if by_ref[row["firm_ref"]]["naf_code"] == naf
        and row["kind"] == kind
        and word in (row["title"] + " " + row["description"]).lower()
    ]


@pytest.mark.parametrize(
    ("naf", "kind", "word"),
    [
        ("47.64Z", "offer", "chambres à air"),  # the bike shop's inner tubes...
        ("16.24Z", "need", "caoutchouc"),  # ...and the pallet maker that needs rubber for pallet feet
        ("16.10A", "offer", "sciure"),  # the sawmill's sawdust...
        ("01.47Z", "need", "litière"),  # ...and the poultry farm's litter
        ("10.51C", "offer", "lactosérum"),  # the dairy's whey...
        ("01.46Z", "need", "lactosérum"),  # ...and the pig farm
        ("11.05Z", "offer", "drêches"),  # the brewery's spent grain...
        ("01.41Z", "need", "drêches"),  # ...and cattle feed
        ("47.11D", "offer", "carton"),  # cardboard...
        ("14.13Z", "need", "calage"),  # ...and a wedging need
    ],
)
def test_showcase_pairs_are_present(
    firms: list[dict[str, str]], listings: list[dict[str, str]], naf: str, kind: str, word: str
) -> None:
    assert _find(listings, firms, naf, kind, word)


def test_inner_tubes(firms: list[dict[str, str]], listings: list[dict[str, str]]) -> None:
    (ref,) = _find(listings, firms, "47.64Z", "offer", "chambres à air")
    row = next(r for r in listings if r["ref"] == ref)
    assert (row["quantity"], row["unit"], row["frequency"]) == ("15", "kg", "monthly")
    assert n.low_by_code()[n.normalise_low_code(row["low_code"]) or ""].family == "rubber"


def test_hazardous_listings(listings: list[dict[str, str]]) -> None:
    hazardous_offers = {
        n.normalise_low_code(row["low_code"])
        for row in listings
        if row["kind"] == "offer"
        and row["low_code"]
        and n.low_by_code()[n.normalise_low_code(row["low_code"]) or ""].hazardous
    }
    assert {"13 02 05", "14 06 03", "16 06 01"} <= hazardous_offers  # used oil, solvents, batteries
    assert any(row["kind"] == "need" and row["accepts_hazardous"] == "1" for row in listings)
