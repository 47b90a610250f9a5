"""The shipped reference data against the verified public files it was built from."""

from __future__ import annotations

import csv
import importlib.util
import os
from collections import Counter
from pathlib import Path

import pytest

SEED = Path(__file__).resolve().parents[2] / "seed"
SHARED = Path(os.environ.get("MATCHMAKING_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
CCMA_SIREN = "200042182"


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _shared(name: str) -> list[dict[str, str]]:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"reference data not available: {path}")
    return _read(path)


def test_list_of_waste_columns() -> None:
    with (SEED / "list_of_waste.csv").open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["code", "level", "chapter", "subchapter", "hazardous", "label_fr", "label_en", "family"]


def test_list_of_waste_counts() -> None:
    rows = _read(SEED / "list_of_waste.csv")
    assert Counter(r["level"] for r in rows) == {"chapter": 20, "subchapter": 111, "entry": 842}
    entries = [r for r in rows if r["level"] == "entry"]
    assert sum(r["hazardous"] == "1" for r in entries) == 408
    assert {r["hazardous"] for r in entries} == {"0", "1"}
    assert all(r["hazardous"] == "" and r["family"] == "" for r in rows if r["level"] != "entry")
    assert all("*" not in r["code"] for r in rows)


def test_list_of_waste_matches_official_list_row_by_row() -> None:
    ours = _read(SEED / "list_of_waste.csv")
    ref = _shared("list_of_waste.csv")
    assert len(ours) == len(ref)
    for mine, theirs in zip(ours, ref, strict=True):
        assert mine["code"] == theirs["code"].rstrip("*")
        assert mine["level"] == theirs["level"]
        assert mine["chapter"] == theirs["chapter"]
        assert mine["subchapter"] == theirs["subchapter"]
        assert mine["hazardous"] == theirs["hazardous"], mine["code"]
        assert theirs["code"].endswith("*") == (mine["hazardous"] == "1"), mine["code"]
        assert mine["label_fr"] == theirs["description_fr"], mine["code"]
        assert mine["label_en"] == theirs["description_en"], mine["code"]


def test_every_entry_has_an_existing_family() -> None:
    slugs = {r["slug"] for r in _read(SEED / "material_families.csv")}
    entries = [r for r in _read(SEED / "list_of_waste.csv") if r["level"] == "entry"]
    missing = [r["code"] for r in entries if r["family"] not in slugs]
    assert missing == []
    # every family is the default of at least one entry, so none is dead weight
    assert {r["family"] for r in entries} == slugs


@pytest.mark.parametrize(
    ("code", "family"),
    [
        ("16 01 03", "rubber"),
        ("03 01 05", "wood"),
        ("02 05 01", "food_organics"),
        ("10 01 02", "ashes_slags"),
        ("15 01 01", "paper_cardboard"),
        ("20 02 01", "green_waste"),
        ("13 02 05", "mineral_oils"),
        ("20 01 25", "oils_fats"),
        ("07 02 13", "plastics"),
        ("16 02 14", "weee"),
        ("17 04 05", "ferrous_metals"),
        ("19 12 04", "plastics"),
        ("17 06 05", "asbestos"),
        ("02 01 06", "manure_slurry"),
        ("16 06 01", "batteries"),
        ("14 06 03", "solvents"),
        ("17 08 02", "gypsum_plaster"),
        ("17 01 07", "inert_minerals"),
    ],
)
def test_reviewed_default_families(code: str, family: str) -> None:
    rows = {r["code"]: r for r in _read(SEED / "list_of_waste.csv")}
    assert rows[code]["family"] == family


def test_families_file() -> None:
    families = _read(SEED / "material_families.csv")
    assert 20 <= len(families) <= 30
    assert len({f["slug"] for f in families}) == len(families)
    categories = {r["code"]: r for r in _read(SEED / "ewc_stat_categories.csv")}
    for f in families:
        assert f["ewc_stat_code"] in categories, f["slug"]
        assert f["ewc_stat_label_en"] == categories[f["ewc_stat_code"]]["label_en"]
        assert f["label_fr"] and f["label_en"]
        if f["density_t_per_m3"]:
            assert 0.01 < float(f["density_t_per_m3"]) < 3.0
            assert f["density_source"], f"{f['slug']}: density without a source"


def test_ewc_stat_categories_match_reference() -> None:
    ours = _read(SEED / "ewc_stat_categories.csv")
    ref = _shared("ewc_stat_categories.csv")
    assert len(ours) == 33
    assert [(r["code"], r["label_en"]) for r in ours] == [(r["code"], r["name_en"]) for r in ref]


def test_communes_columns_and_counts() -> None:
    rows = _read(SEED / "communes.csv")
    assert list(rows[0]) == [
        "insee",
        "name",
        "postal_codes",
        "lat",
        "lon",
        "department",
        "population",
        "ccma",
    ]
    assert len(rows) == 973
    assert Counter(r["department"] for r in rows) == {"53": 240, "61": 381, "72": 352}
    assert sum(r["ccma"] == "1" for r in rows) == 26
    assert {r["ccma"] for r in rows} == {"0", "1"}


def test_communes_match_reference() -> None:
    ours = {r["insee"]: r for r in _read(SEED / "communes.csv")}
    ref = _shared("communes_53_61_72.csv")
    assert set(ours) == {r["insee"] for r in ref}
    for theirs in ref:
        mine = ours[theirs["insee"]]
        assert mine["name"] == theirs["name"]
        assert mine["postal_codes"].split() == theirs["postal_codes_all"].split("|")
        assert mine["postal_codes"].split()[0] == theirs["postal_code"]
        assert float(mine["lat"]) == float(theirs["lat"])
        assert float(mine["lon"]) == float(theirs["lon"])
        assert mine["department"] == theirs["department"]
        assert mine["population"] == theirs["population"]
        assert (mine["ccma"] == "1") == (theirs["epci_siren"] == CCMA_SIREN), mine["insee"]


def test_ccma_communes() -> None:
    ccma = {r["name"] for r in _read(SEED / "communes.csv") if r["ccma"] == "1"}
    assert {"Villaines-la-Juhel", "Pré-en-Pail-Saint-Samson", "Javron-les-Chapelles"} <= ccma
    assert "Lassay-les-Châteaux" not in ccma


def test_seed_files_are_what_the_build_script_produces() -> None:
    _shared("list_of_waste.csv")
    spec = importlib.util.spec_from_file_location("build_reference", SEED / "tools" / "build_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outputs = module.build(SHARED)
    assert set(outputs) == {
        "list_of_waste.csv",
        "material_families.csv",
        "ewc_stat_categories.csv",
        "communes.csv",
    }
    for name, text in outputs.items():
        assert (SEED / name).read_text(encoding="utf-8") == text, f"{name} is out of date"
