"""Rebuild the reference seed files from the verified public reference data.

Reads the shared reference folder (``MATCHMAKING_SHARED_DATA`` or ``../shared/data`` next to the
repository) and writes, without any network access:

- ``seed/list_of_waste.csv``       EU List of Waste with a default material family per entry
- ``seed/material_families.csv``   material families, their EWC-Stat category and bulk density
- ``seed/ewc_stat_categories.csv`` EWC-Stat Rev.4 categories
- ``seed/communes.csv``            communes of Mayenne, Orne and Sarthe

Usage: ``python seed/tools/build_reference.py [--check]``. With ``--check`` nothing is written and
the exit status says whether the committed files are up to date.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "seed"
CCMA_SIREN = "200042182"

# 1 lb/yd3 in t/m3, and 1 lb/US gal in t/m3 (exact definitions of the pound, yard and gallon).
LB_PER_YD3 = 0.45359237 / 0.764554857984 / 1000
LB_PER_GAL = 0.45359237 / 3.785411784

EPA = "US EPA ORCR, Volume-to-Weight Conversion Factors (April 2016), via ENERGY STAR Portfolio Manager: "
CALRECYCLE = "CalRecycle, CDI inspection tools, Calculations table: "


def _per_yd3(lb: float) -> float:
    return round(lb * LB_PER_YD3, 3)


# slug, label_fr, label_en, EWC-Stat code, density t/m3 (None when unsourced), density source/note
FAMILIES: list[tuple[str, str, str, str, float | None, str]] = [
    ("wood", "Bois", "Wood", "07.5", _per_yd3(169), EPA + "Building Materials - Wood, 169 lb/yd3"),
    (
        "paper_cardboard",
        "Papiers et cartons",
        "Paper and cardboard",
        "07.2",
        _per_yd3(106),
        EPA + "Cardboard/Corrugated Containers, 106 lb/yd3",
    ),
    ("plastics", "Plastiques", "Plastics", "07.4", _per_yd3(40), EPA + "Plastics - Mixed, 40 lb/yd3"),
    (
        "rubber",
        "Caoutchouc et pneumatiques",
        "Rubber and tyres",
        "07.3",
        _per_yd3(220),
        CALRECYCLE + "Tires, Auto and Pickup, 220 lb/yd3 (whole tyres, not shreds)",
    ),
    (
        "ferrous_metals",
        "Métaux ferreux",
        "Ferrous metals",
        "06.1",
        _per_yd3(225),
        EPA + "Building Materials - Steel, 225 lb/yd3",
    ),
    ("non_ferrous_metals", "Métaux non ferreux", "Non-ferrous metals", "06.2", None, ""),
    ("mixed_metals", "Métaux en mélange", "Mixed metals", "06.3", None, ""),
    ("glass", "Verre", "Glass", "07.1", _per_yd3(380), EPA + "Glass, 380 lb/yd3"),
    (
        "textiles",
        "Textiles et cuir",
        "Textiles and leather",
        "07.6",
        _per_yd3(150),
        EPA + "Textiles / Clothing, 150 lb/yd3",
    ),
    (
        "inert_minerals",
        "Déchets minéraux inertes (béton, briques, terres, pierres)",
        "Inert mineral waste (concrete, bricks, soil, stones)",
        "12.1",
        _per_yd3(2400),
        CALRECYCLE + "Construction Debris, Asphalt or Concrete, loose, 2400 lb/yd3",
    ),
    (
        "mineral_residues",
        "Autres résidus minéraux (sables de fonderie, réfractaires, stériles)",
        "Other mineral residues (foundry sand, refractories, tailings)",
        "12.2, 12.3, 12.5",
        None,
        "",
    ),
    ("asbestos", "Déchets amiantés", "Asbestos-containing waste", "12.2, 12.3, 12.5", None, ""),
    ("gypsum_plaster", "Plâtre et matériaux à base de gypse", "Gypsum and plaster", "12.1", None, ""),
    ("insulation", "Isolants (laines minérales, mousses)", "Insulation materials", "12.1", None, ""),
    ("ashes_slags", "Cendres, mâchefers et scories", "Ashes, bottom ash and slags", "12.4", None, ""),
    (
        "food_organics",
        "Biodéchets et coproduits agroalimentaires",
        "Food waste and agri-food by-products",
        "09.1",
        None,
        "no single value: the family spans liquids (whey) and loose solids "
        "(EPA 2016 Food/Food Scraps 396 lb/yd3 = 0.235 t/m3)",
    ),
    (
        "green_waste",
        "Déchets verts et végétaux",
        "Green and plant waste",
        "09.2",
        _per_yd3(250),
        EPA + "Grass / Yard Trimmings, 250 lb/yd3",
    ),
    ("animal_by_products", "Sous-produits animaux", "Animal by-products", "09.1", None, ""),
    ("manure_slurry", "Effluents d'élevage et digestats", "Manure, slurry and digestate", "09.3", None, ""),
    (
        "oils_fats",
        "Huiles et graisses alimentaires",
        "Edible oils and fats",
        "09.1",
        round(7.5 * LB_PER_GAL, 3),
        EPA + "Fats/Oils/Grease, 7.5 lb/gal",
    ),
    (
        "mineral_oils",
        "Huiles minérales usagées et hydrocarbures",
        "Waste mineral oils and fuels",
        "01.3",
        _per_yd3(1600),
        CALRECYCLE + "Liquid Waste (antifreeze, waste oil, solvent), 1600 lb/yd3",
    ),
    (
        "solvents",
        "Solvants usés",
        "Spent solvents",
        "01.1",
        _per_yd3(1600),
        CALRECYCLE + "Liquid Waste (antifreeze, waste oil, solvent), 1600 lb/yd3",
    ),
    ("chemicals", "Déchets chimiques", "Chemical waste", "01.4, 02, 03.1", None, ""),
    (
        "sludges",
        "Boues organiques (épuration, agroalimentaire)",
        "Common sludges (sewage, food industry)",
        "11",
        None,
        "",
    ),
    (
        "industrial_sludges",
        "Boues et effluents industriels",
        "Industrial sludges and aqueous liquid waste",
        "03.2",
        None,
        "",
    ),
    (
        "weee",
        "Déchets d'équipements électriques et électroniques (DEEE)",
        "Waste electrical and electronic equipment (WEEE)",
        "08 (excl. 08.1, 08.41)",
        None,
        "",
    ),
    ("batteries", "Piles et batteries", "Batteries and accumulators", "08.41", None, ""),
    ("healthcare", "Déchets de soins", "Health-care waste", "05", None, ""),
    (
        "packaging_mixed",
        "Emballages en mélange",
        "Mixed packaging",
        "10.2",
        _per_yd3(58),
        EPA + "Mixed recyclables, 58 lb/yd3",
    ),
    ("mixed_waste", "Déchets en mélange", "Mixed waste", "10.1", _per_yd3(138), EPA + "Trash, 138 lb/yd3"),
]

# Reviewed one by one: entries that the ordered rules below would put in the wrong family.
OVERRIDES: dict[str, str] = {
    "01 05 05": "industrial_sludges",
    "02 01 07": "wood",
    "02 04 01": "inert_minerals",
    "02 04 02": "mineral_residues",
    "03 03 07": "mixed_waste",
    "03 03 09": "mineral_residues",
    "03 03 11": "sludges",
    "04 01 01": "animal_by_products",
    "04 01 02": "chemicals",
    "04 01 03": "solvents",
    "04 02 10": "oils_fats",
    "04 02 14": "solvents",
    "05 01 04": "chemicals",
    "06 09 02": "ashes_slags",
    "09 01 08": "mixed_waste",
    "10 01 09": "chemicals",
    "10 04 03": "chemicals",
    "10 11 03": "insulation",
    "10 11 11": "glass",
    "10 11 99": "glass",
    "10 12 06": "mineral_residues",
    "10 12 08": "inert_minerals",
    "10 12 99": "inert_minerals",
    "10 13 10": "mineral_residues",
    "10 13 11": "inert_minerals",
    "10 13 14": "inert_minerals",
    "11 05 01": "non_ferrous_metals",
    "11 05 02": "non_ferrous_metals",
    "12 01 13": "mixed_metals",
    "12 01 18": "industrial_sludges",
    "12 01 99": "mixed_metals",
    "13 05 01": "industrial_sludges",
    "13 05 02": "industrial_sludges",
    "13 05 03": "industrial_sludges",
    "13 05 08": "industrial_sludges",
    "14 06 01": "chemicals",
    "15 01 10": "packaging_mixed",
    "15 01 11": "mixed_metals",
    "15 02 02": "chemicals",
    "15 02 03": "textiles",
    "16 01 06": "mixed_metals",
    "16 01 07": "mineral_oils",
    "16 01 12": "mixed_metals",
    "16 01 16": "ferrous_metals",
    "16 01 22": "mixed_metals",
    "16 01 99": "mixed_metals",
    "16 03 04": "mineral_residues",
    "16 03 06": "food_organics",
    "16 06 06": "chemicals",
    "16 07 08": "industrial_sludges",
    "16 07 99": "industrial_sludges",
    "17 02 04": "mixed_waste",
    "17 03 03": "chemicals",
    "17 04 09": "mixed_metals",
    "17 09 01": "chemicals",
    "17 09 02": "chemicals",
    "19 01 06": "industrial_sludges",
    "19 02 07": "mineral_oils",
    "19 02 08": "chemicals",
    "19 03 08": "chemicals",
    "19 04 02": "ashes_slags",
    "19 04 04": "industrial_sludges",
    "19 05 01": "mixed_waste",
    "19 06 05": "manure_slurry",
    "19 06 06": "manure_slurry",
    "19 08 01": "mixed_waste",
    "19 08 02": "mineral_residues",
    "19 08 09": "oils_fats",
    "19 08 10": "mineral_oils",
    "19 09 01": "mineral_residues",
    "19 11 01": "chemicals",
    "19 11 02": "chemicals",
    "19 11 04": "chemicals",
    "19 11 07": "ashes_slags",
    "19 12 09": "inert_minerals",
    "20 01 08": "food_organics",
    "20 01 25": "oils_fats",
    "20 01 31": "healthcare",
    "20 01 32": "healthcare",
    "20 01 41": "ashes_slags",
    "20 02 02": "inert_minerals",
    "20 02 03": "mixed_waste",
    "20 03 02": "food_organics",
}

# (code prefix, regex on the English label or None, family). Rules with a regex are tried in order
# and the first match wins; rules without one are subchapter/chapter defaults.
RULES: list[tuple[str, str | None, str]] = [
    # Material words that decide the family wherever they appear.
    ("", r"\basbestos\b", "asbestos"),
    ("", r"\btyres\b", "rubber"),
    ("", r"single-use cameras", "weee"),
    ("", r"batteries|accumulators", "batteries"),
    ("", r"electrical and electronic equipment|discarded equipment|fluorescent tubes|transformers", "weee"),
    ("", r"solvents, washing liquids and mother liquors", "solvents"),
    ("", r"^aqueous (washing|rinsing) liquids", "chemicals"),
    ("", r"still bottoms|filter cakes and spent absorbents|ion exchange|activated carbon", "chemicals"),
    # 01 mining and quarrying
    ("01 01", None, "inert_minerals"),
    ("01 04", r"gravel|sand and clays|stone cutting", "inert_minerals"),
    ("01", None, "mineral_residues"),
    # 02 agriculture and food
    ("02", r"sludges", "sludges"),
    ("02 01", r"animal-tissue", "animal_by_products"),
    ("02 01", r"plant-tissue|not otherwise specified", "green_waste"),
    ("02 01", r"faeces|manure", "manure_slurry"),
    ("02 01", r"agrochemical", "chemicals"),
    ("02 02", None, "animal_by_products"),
    ("02 07", r"chemical treatment", "chemicals"),
    ("02", None, "food_organics"),
    # 03 wood, panels, pulp and paper
    ("03 01", None, "wood"),
    ("03 02", None, "chemicals"),
    ("03 03", r"bark|wood", "wood"),
    ("03 03", r"sludge|rejects", "industrial_sludges"),
    ("03 03", None, "paper_cardboard"),
    # 04 leather and textiles
    ("04", r"sludges", "industrial_sludges"),
    ("04", r"tanning liquor|dyestuffs|finishing other", "chemicals"),
    ("04", None, "textiles"),
    # 05 petroleum, gas, coal
    ("05", r"effluent|cooling|boiler feedwater", "industrial_sludges"),
    ("05 01", r"sludges|oil|not otherwise specified", "mineral_oils"),
    ("05", None, "chemicals"),
    # 06 inorganic chemistry
    ("06 05", None, "industrial_sludges"),
    ("06", r"calcium-based reaction", "mineral_residues"),
    ("06", None, "chemicals"),
    # 07, 08, 09 organic chemistry, coatings, photography
    ("07 02", r"^waste plastic", "plastics"),
    ("07", r"sludges", "industrial_sludges"),
    ("07", None, "chemicals"),
    ("08 02", r"aqueous", "industrial_sludges"),
    ("08", None, "chemicals"),
    ("09", None, "chemicals"),
    # 10 thermal processes
    ("10", r"binders|crack-indicating|mercury", "chemicals"),
    ("10", r"sludge|cooling-water|aqueous|effluent", "industrial_sludges"),
    ("10", r"casting cores|anode|preparation mixture|glazing|refractor|lime|alumina", "mineral_residues"),
    ("10 09", r"not otherwise specified", "mineral_residues"),
    ("10 10", r"not otherwise specified", "mineral_residues"),
    ("10 13", None, "mineral_residues"),
    ("10", None, "ashes_slags"),
    # 11 surface treatment of metals
    ("11", r"sludges|eluate", "industrial_sludges"),
    ("11 05", r"gas treatment", "ashes_slags"),
    ("11", None, "chemicals"),
    # 12 shaping of metals and plastics
    ("12 01", r"oils?\b|emulsions|waxes", "mineral_oils"),
    ("12 01", r"sludges", "industrial_sludges"),
    ("12 01", r"blasting|grinding", "mineral_residues"),
    ("12 03", None, "chemicals"),
    # 13 oils and liquid fuels, 14 solvents
    ("13", None, "mineral_oils"),
    ("14", None, "solvents"),
    # 15 packaging, absorbents
    ("15 01", r"composite|mixed", "packaging_mixed"),
    # 16 not otherwise specified
    ("16 01", r"brake fluids|antifreeze|explosive|hazardous components|mercury|PCB", "chemicals"),
    ("16 08", None, "chemicals"),
    ("16 10", None, "industrial_sludges"),
    ("16 11", None, "mineral_residues"),
    ("16 03", None, "chemicals"),
    ("16", None, "chemicals"),
    # 17 construction and demolition
    ("17 01", None, "inert_minerals"),
    ("17 03", None, "inert_minerals"),
    ("17 04", None, "non_ferrous_metals"),
    ("17 05", None, "inert_minerals"),
    ("17 06", None, "insulation"),
    ("17 08", None, "gypsum_plaster"),
    ("17 09", None, "mixed_waste"),
    # 18 health care
    ("18", r"^chemicals", "chemicals"),
    ("18", None, "healthcare"),
    # 19 waste treatment
    ("19 01", None, "ashes_slags"),
    ("19 02", r"sludges", "industrial_sludges"),
    ("19 02", r"premixed|combustible|not otherwise specified", "mixed_waste"),
    ("19 02", None, "chemicals"),
    ("19 03", None, "mineral_residues"),
    ("19 04", None, "mineral_residues"),
    ("19 05", None, "green_waste"),
    ("19 06", None, "sludges"),
    ("19 07", None, "industrial_sludges"),
    ("19 08", r"urban waste water|not otherwise specified", "sludges"),
    ("19 08", r"sludges", "industrial_sludges"),
    ("19 08", None, "chemicals"),
    ("19 09", r"sludges|not otherwise specified", "sludges"),
    ("19 09", None, "chemicals"),
    ("19 10", r"fluff|other fractions", "mixed_waste"),
    ("19 11", r"aqueous|sludges", "industrial_sludges"),
    ("19 11", None, "mineral_oils"),
    ("19 12", r"combustible|other wastes", "mixed_waste"),
    ("19 13", r"sludges|aqueous", "industrial_sludges"),
    ("19 13", None, "inert_minerals"),
    # 20 municipal
    ("20 01", r"solvents", "solvents"),
    ("20 01", r"acids|alkalines|photochemicals|pesticides|paint|detergents", "chemicals"),
    ("20 01", r"not otherwise specified", "mixed_waste"),
    ("20 02", None, "green_waste"),
    ("20 03", r"sludge|sewage", "sludges"),
    ("20 03", None, "mixed_waste"),
]

# Categories of the SEPA mapping that name one material; they win over subchapter and chapter
# defaults (17 04 05 iron and steel is ferrous even though most of 17 04 is non-ferrous).
SEPA_TO_FAMILY: dict[str, str] = {
    "01.1": "solvents",
    "01.3": "mineral_oils",
    "06.1": "ferrous_metals",
    "06.2": "non_ferrous_metals",
    "06.3": "mixed_metals",
    "07.1": "glass",
    "07.2": "paper_cardboard",
    "07.3": "rubber",
    "07.4": "plastics",
    "07.5": "wood",
    "07.6": "textiles",
    "08 (excl. 08.1, 08.41)": "weee",
    "08.1": "mixed_metals",
    "08.41": "batteries",
}

_KEYWORD_RULES = [(prefix, re.compile(rx, re.IGNORECASE), fam) for prefix, rx, fam in RULES if rx]
# Defaults apply longest prefix first: subchapter before chapter.
_DEFAULTS = sorted(((prefix, fam) for prefix, rx, fam in RULES if not rx), key=lambda t: -len(t[0]))


def default_family(code: str, label_en: str, sepa: str) -> tuple[str, str]:
    """Return (family, rule that decided) for a six-digit entry code without asterisk.

    Order: reviewed overrides, keyword rules (in order), SEPA material category, subchapter default,
    chapter default.
    """
    if code in OVERRIDES:
        return OVERRIDES[code], "override"
    for prefix, rx, fam in _KEYWORD_RULES:
        if code.startswith(prefix) and rx.search(label_en):
            return fam, f"keyword {prefix or '*'} /{rx.pattern}/"
    if sepa in SEPA_TO_FAMILY:
        return SEPA_TO_FAMILY[sepa], f"sepa {sepa}"
    for prefix, fam in _DEFAULTS:
        if code.startswith(prefix):
            return fam, f"default {prefix}"
    raise ValueError(f"no family for {code} {label_en!r} (SEPA {sepa!r})")


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _render(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def build(shared: Path, verbose: bool = False) -> dict[str, str]:
    sepa = {r["low_code"].rstrip("*"): r["ewc_stat_code"] for r in _read(shared / "low_to_ewc_stat.csv")}
    slugs = {f[0] for f in FAMILIES}
    reasons: Counter[str] = Counter()
    low_rows = []
    for r in _read(shared / "list_of_waste.csv"):
        code = r["code"].rstrip("*")
        family = ""
        if r["level"] == "entry":
            family, why = default_family(code, r["description_en"], sepa.get(code, ""))
            if family not in slugs:
                raise ValueError(f"{code}: unknown family {family}")
            reasons[why.split(" ")[0]] += 1
            if verbose:
                star = "*" if r["hazardous"] == "1" else " "
                print(f"{code}{star} {family:20} {why:40} {r['description_en']}")
        low_rows.append(
            [
                code,
                r["level"],
                r["chapter"],
                r["subchapter"],
                r["hazardous"],
                r["description_fr"],
                r["description_en"],
                family,
            ]
        )
    if verbose:
        print(dict(reasons), file=sys.stderr)

    fam_rows = []
    cats = {r["code"]: r for r in _read(shared / "ewc_stat_categories.csv")}
    for slug, fr, en, stat, density, source in FAMILIES:
        fam_rows.append([slug, fr, en, stat, cats[stat]["name_en"], _num(density), source])

    cat_rows = [[r["code"], r["name_en"], r["name_fr"]] for r in cats.values()]

    commune_rows = []
    for r in _read(shared / "communes_53_61_72.csv"):
        commune_rows.append(
            [
                r["insee"],
                r["name"],
                " ".join(r["postal_codes_all"].split("|")),
                r["lat"],
                r["lon"],
                r["department"],
                r["population"],
                "1" if r["epci_siren"] == CCMA_SIREN else "0",
            ]
        )

    return {
        "list_of_waste.csv": _render(
            ["code", "level", "chapter", "subchapter", "hazardous", "label_fr", "label_en", "family"],
            low_rows,
        ),
        "material_families.csv": _render(
            [
                "slug",
                "label_fr",
                "label_en",
                "ewc_stat_code",
                "ewc_stat_label_en",
                "density_t_per_m3",
                "density_source",
            ],
            fam_rows,
        ),
        "ewc_stat_categories.csv": _render(["code", "label_en", "label_fr"], cat_rows),
        "communes.csv": _render(
            ["insee", "name", "postal_codes", "lat", "lon", "department", "population", "ccma"], commune_rows
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=None, help="reference data folder")
    parser.add_argument("--check", action="store_true", help="only compare with the committed files")
    parser.add_argument("--only", nargs="*", default=None, help="file names to write (default: all)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the family of every entry")
    args = parser.parse_args(argv)
    shared = args.shared or Path(os.environ.get("MATCHMAKING_SHARED_DATA", REPO.parent / "shared" / "data"))
    outputs = build(shared, verbose=args.verbose)
    stale = []
    for name, text in outputs.items():
        if args.only is not None and name not in args.only:
            continue
        target = SEED / name
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            target.write_text(text, encoding="utf-8")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
