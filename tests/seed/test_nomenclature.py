"""The pure loader of seed/ data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from matchmaking.matching import nomenclature as n


@pytest.mark.parametrize(
    "text",
    ["160103", "16 01 03", "16-01-03", "16 01 03*", "16.01.03", "  16 01 03  ", "16 01 03 *", "16/01/03"],
)
def test_normalise_low_code_accepts_common_spellings(text: str) -> None:
    assert n.normalise_low_code(text) == "16 01 03"


def test_normalise_low_code_keeps_hazardous_codes() -> None:
    assert n.normalise_low_code("130205*") == "13 02 05"
    assert n.low_by_code()["13 02 05"].hazardous is True


@pytest.mark.parametrize(
    "text",
    [
        "",
        "16",
        "16 01",
        "1601",
        "999999",
        "16 01 00",
        "16 01 033",
        "1601033",
        "abc",
        "16 01 03**",
        "16 O1 03",
    ],
)
def test_normalise_low_code_rejects_unknown_or_malformed(text: str) -> None:
    assert n.normalise_low_code(text) is None


def test_list_of_waste() -> None:
    entries = n.list_of_waste()
    assert len(entries) == 973
    assert entries[0].code == "01" and entries[0].level == "chapter" and entries[0].family is None
    six = [e for e in entries if e.level == "entry"]
    assert len(six) == 842
    assert sum(e.hazardous for e in six) == 408
    assert all(e.family for e in six)
    tyres = n.low_by_code()["16 01 03"]
    assert tyres == n.LowEntry(
        code="16 01 03",
        level="entry",
        chapter="16",
        subchapter="16 01",
        hazardous=False,
        label_fr="pneus hors d'usage",
        label_en="end-of-life tyres",
        family="rubber",
    )
    assert n.low_by_code()["16 01"].subchapter == "16 01"
    assert n.low_by_code()["16"].subchapter == ""


def test_families() -> None:
    by_slug = n.family_by_slug()
    assert len(by_slug) == len(n.families())
    assert {e.family for e in n.list_of_waste() if e.family} <= set(by_slug)
    wood = by_slug["wood"]
    assert wood.ewc_stat_code == "07.5"
    assert wood.density_t_per_m3 == pytest.approx(0.1, abs=0.01)
    assert by_slug["chemicals"].density_t_per_m3 is None


def test_communes() -> None:
    communes = n.communes()
    assert len(communes) == 973
    assert sum(c.ccma for c in communes) == 26
    villaines = n.commune_by_insee()["53271"]
    assert villaines.name == "Villaines-la-Juhel"
    assert villaines.postal_codes == ("53700",)
    assert villaines.ccma is True
    assert villaines.population is not None and villaines.population > 1000
    assert 48.0 < villaines.lat < 48.6 and -0.6 < villaines.lon < 0.0


def test_communes_by_postal_code() -> None:
    by_cp = n.communes_by_postal_code()
    assert "53271" in {c.insee for c in by_cp["53700"]}
    # Évron has two postal codes and is found under both
    assert "53097" in {c.insee for c in by_cp["53150"]}
    assert "53097" in {c.insee for c in by_cp["53600"]}
    assert sum(len(found) for found in by_cp.values()) == sum(len(c.postal_codes) for c in n.communes())


def test_records_are_immutable() -> None:
    with pytest.raises(AttributeError):
        n.low_by_code()["16 01 03"].family = "wood"  # type: ignore[misc]


def test_seed_dir_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert n.seed_dir() == Path(n.__file__).resolve().parents[2] / "seed"
    for name in ("list_of_waste.csv", "material_families.csv", "communes.csv"):
        shutil.copy(n.seed_dir() / name, tmp_path / name)
    with (tmp_path / "communes.csv").open("a", encoding="utf-8") as handle:
        handle.write("99999,Testville,99000 99001,48.0,0.0,99,,0\n")
    monkeypatch.setenv(n.SEED_DIR_ENV, str(tmp_path))
    assert n.seed_dir() == tmp_path
    assert len(n.communes()) == 974
    testville = n.commune_by_insee()["99999"]
    assert testville.population is None and testville.postal_codes == ("99000", "99001")
    monkeypatch.delenv(n.SEED_DIR_ENV)
    assert len(n.communes()) == 973
