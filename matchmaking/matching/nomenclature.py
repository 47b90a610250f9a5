"""Read-only access to the reference data shipped in ``seed/``.

The EU List of Waste with a default material family per entry, the material families, and the
communes of Mayenne, Orne and Sarthe. Standard library only, so the matching engine and offline
tools can use it without the web application. Results are cached per seed directory; treat the
returned dicts as read-only.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

SEED_DIR_ENV = "MATCHMAKING_SEED_DIR"


@dataclass(frozen=True, slots=True)
class LowEntry:
    """One row of the List of Waste: a chapter, a subchapter or a six-digit entry."""

    code: str  # "16", "16 01" or "16 01 03", never with the asterisk
    level: str  # chapter | subchapter | entry
    chapter: str
    subchapter: str  # empty for chapters
    hazardous: bool  # always False for chapters and subchapters
    label_fr: str
    label_en: str
    family: str | None  # default material family slug; None for chapters and subchapters


@dataclass(frozen=True, slots=True)
class Family:
    slug: str
    label_fr: str
    label_en: str
    ewc_stat_code: str
    ewc_stat_label_en: str
    density_t_per_m3: float | None  # typical bulk density; None when no sourced value exists


@dataclass(frozen=True, slots=True)
class Commune:
    insee: str
    name: str
    postal_codes: tuple[str, ...]
    lat: float
    lon: float
    department: str
    population: int | None
    ccma: bool  # member of the Communauté de communes du Mont des Avaloirs


# Resolved once: resolving a path asks the file system (a tenth of a millisecond), and explaining
# one match asks for the seed directory several times.
_REPOSITORY_SEED_DIR = Path(__file__).resolve().parents[2] / "seed"


def seed_dir() -> Path:
    """``$MATCHMAKING_SEED_DIR`` when set, else the repository's ``seed/`` folder."""
    override = os.environ.get(SEED_DIR_ENV)
    if override:
        return Path(override)
    return _REPOSITORY_SEED_DIR


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _optional_float(text: str) -> float | None:
    text = text.strip()
    return float(text) if text else None


def _optional_int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text else None


# Keyed on the directory so that changing MATCHMAKING_SEED_DIR (tests) never serves stale data.
@functools.cache
def _list_of_waste(directory: Path) -> tuple[LowEntry, ...]:
    return tuple(
        LowEntry(
            code=row["code"],
            level=row["level"],
            chapter=row["chapter"],
            subchapter=row["subchapter"],
            hazardous=row["hazardous"] == "1",
            label_fr=row["label_fr"],
            label_en=row["label_en"],
            family=row["family"] or None,
        )
        for row in _rows(directory / "list_of_waste.csv")
    )


@functools.cache
def _low_by_code(directory: Path) -> dict[str, LowEntry]:
    return {entry.code: entry for entry in _list_of_waste(directory)}


@functools.cache
def _families(directory: Path) -> tuple[Family, ...]:
    return tuple(
        Family(
            slug=row["slug"],
            label_fr=row["label_fr"],
            label_en=row["label_en"],
            ewc_stat_code=row["ewc_stat_code"],
            ewc_stat_label_en=row["ewc_stat_label_en"],
            density_t_per_m3=_optional_float(row["density_t_per_m3"]),
        )
        for row in _rows(directory / "material_families.csv")
    )


@functools.cache
def _family_by_slug(directory: Path) -> dict[str, Family]:
    return {family.slug: family for family in _families(directory)}


@functools.cache
def _communes(directory: Path) -> tuple[Commune, ...]:
    return tuple(
        Commune(
            insee=row["insee"],
            name=row["name"],
            postal_codes=tuple(row["postal_codes"].split()),
            lat=float(row["lat"]),
            lon=float(row["lon"]),
            department=row["department"],
            population=_optional_int(row["population"]),
            ccma=row["ccma"] == "1",
        )
        for row in _rows(directory / "communes.csv")
    )


@functools.cache
def _commune_by_insee(directory: Path) -> dict[str, Commune]:
    return {commune.insee: commune for commune in _communes(directory)}


@functools.cache
def _communes_by_postal_code(directory: Path) -> dict[str, tuple[Commune, ...]]:
    grouped: dict[str, list[Commune]] = {}
    for commune in _communes(directory):
        for postal_code in commune.postal_codes:
            grouped.setdefault(postal_code, []).append(commune)
    return {postal_code: tuple(found) for postal_code, found in grouped.items()}


def list_of_waste() -> tuple[LowEntry, ...]:
    """Every chapter, subchapter and entry, in the order of the official list."""
    return _list_of_waste(seed_dir())


def low_by_code() -> dict[str, LowEntry]:
    """Rows of the List of Waste keyed by code ("16", "16 01", "16 01 03")."""
    return _low_by_code(seed_dir())


# Two digits three times, optionally separated by spaces, dots, dashes or slashes, then an optional
# hazard asterisk as people copy it from the official list ("16 01 03*").
_LOW_CODE = re.compile(r"(\d{2})[\s./-]*(\d{2})[\s./-]*(\d{2})\s*\*?")


def normalise_low_code(text: str) -> str | None:
    """Canonical "16 01 03" for an existing six-digit entry written in a common form, else None."""
    match = _LOW_CODE.fullmatch(text.strip())
    if match is None:
        return None
    code = " ".join(match.groups())
    entry = low_by_code().get(code)
    return code if entry is not None and entry.level == "entry" else None


def families() -> tuple[Family, ...]:
    return _families(seed_dir())


def family_by_slug() -> dict[str, Family]:
    return _family_by_slug(seed_dir())


def communes() -> tuple[Commune, ...]:
    """The communes of Mayenne (53), Orne (61) and Sarthe (72), by INSEE code."""
    return _communes(seed_dir())


def commune_by_insee() -> dict[str, Commune]:
    return _commune_by_insee(seed_dir())


def communes_by_postal_code() -> dict[str, tuple[Commune, ...]]:
    """Several communes often share one postal code, and a few communes have several."""
    return _communes_by_postal_code(seed_dir())
