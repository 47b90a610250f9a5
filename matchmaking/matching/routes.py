"""Valorisation knowledge: which materials serve which uses, and which buyer sectors have them.

A buyer writes what the material becomes ("litière pour volailles", "raw material for cement
production"), not what it was. Known routes (sawdust → animal bedding, fly ash → cement, spent
grain → cattle feed …) bridge the two. They are data, in ``seed/valorisation_routes.csv`` (material
concept or ``family:<slug>`` → use concept, with a strength and a source) and
``seed/use_sectors.csv`` (use concept → NACE prefixes of the sectors that practise it); see
``seed/KNOWLEDGE.md`` for the sources.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from matchmaking.matching import nomenclature
from matchmaking.matching.text import seed_dir, vocabulary

STRENGTHS = {"strong": 1.0, "medium": 0.7, "weak": 0.4}

# How sure we are that a need wants a use, by where the use was read. Independent readings
# combine like independent witnesses (1 − Π(1 − e)): a need whose words say "cement" and whose
# NACE class is a cement works is a surer cement buyer than one that only says so.
EVIDENCE_TEXT = 0.9  # the need's own words ("litière", "cement")
EVIDENCE_SECTOR_LABEL = 0.75  # the buyer's activity ("Cement production", "élevage bovin")
EVIDENCE_NACE = 0.6  # the buyer's NACE class belongs to a sector practising the use
EVIDENCE_NACE_DIVISION = 0.3  # only the division is known and it contains such a sector
# When a need's own words name what it wants ("litière"), the other uses of its sector ("élevage")
# are what it might also take, not what it asks for.
SECTOR_ONLY_FACTOR = 0.6
# Uses form a small tree in the vocabulary (plasterboard making is a kind of construction
# material making): a route or a need stated for a use also holds, weaker, for its parent.
USE_PARENT_FACTOR = 0.8


def strength_value(text: str) -> float:
    """A route strength: ``strong``/``medium``/``weak`` or a number in (0, 1]."""
    text = text.strip()
    if text in STRENGTHS:
        return STRENGTHS[text]
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise ValueError(f"route strength out of (0, 1]: {text!r}")
    return value


def combine(*evidence: float) -> float:
    """Independent evidences of the same thing, combined: 1 − Π(1 − e)."""
    rest = 1.0
    for e in evidence:
        rest *= 1.0 - max(0.0, min(1.0, e))
    return 1.0 - rest


@dataclass(frozen=True, slots=True)
class Route:
    material: str  # concept id, or "family:<slug>"
    use: str  # use concept id
    strength: float
    source: str

    def label(self, lang: str = "fr") -> str:
        vocab = vocabulary()
        if self.material.startswith("family:"):
            slug = self.material.removeprefix("family:")
            fam = nomenclature.family_by_slug().get(slug)
            mat = (fam.label_fr if lang == "fr" else fam.label_en) if fam else slug
        else:
            mat = vocab.label(self.material, lang)
        use = use_label(self.use, lang)
        return f"{mat.lower()} → {use}"


@dataclass(frozen=True, slots=True)
class Knowledge:
    routes: tuple[Route, ...]
    by_material: dict[str, tuple[Route, ...]]
    use_nace: dict[str, tuple[str, ...]]
    use_labels: dict[str, tuple[str, str]]
    # source NACE prefix → ((receiver NACE prefix, strength), …)
    sector_flows: dict[str, tuple[tuple[str, float], ...]]
    # material concept or "family:<slug>" → ((receiver NACE prefix, strength), …)
    material_sectors: dict[str, tuple[tuple[str, float], ...]]
    # (generic concept, source NACE prefix) → the concept it stands for in that sector
    refinements: dict[tuple[str, str], str]


def _read(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@functools.cache
def _knowledge(directory: Path) -> Knowledge:
    routes = tuple(
        Route(
            material=row["material"].strip(),
            use=row["use"].strip(),
            strength=strength_value(row["strength"]),
            source=row.get("source", "").strip(),
        )
        for row in _read(directory / "valorisation_routes.csv")
    )
    by_material: dict[str, list[Route]] = {}
    for route in routes:
        by_material.setdefault(route.material, []).append(route)
    use_nace: dict[str, tuple[str, ...]] = {}
    use_labels: dict[str, tuple[str, str]] = {}
    for row in _read(directory / "use_sectors.csv"):
        prefixes = tuple(p.strip() for p in row["nace_prefixes"].split("|") if p.strip())
        use_nace[row["use"].strip()] = prefixes
        use_labels[row["use"].strip()] = (row["label_fr"].strip(), row["label_en"].strip())
    flows: dict[str, list[tuple[str, float]]] = {}
    for row in _read(directory / "sector_flows.csv"):
        flows.setdefault(row["source_nace"].strip(), []).append(
            (row["receiver_nace"].strip(), strength_value(row["strength"]))
        )
    receivers: dict[str, list[tuple[str, float]]] = {}
    for row in _read(directory / "material_sectors.csv"):
        receivers.setdefault(row["material"].strip(), []).append(
            (row["receiver_nace"].strip(), strength_value(row["strength"]))
        )
    refinements = {
        (row["concept"].strip(), row["source_nace"].strip()): row["refined"].strip()
        for row in _read(directory / "source_refinements.csv")
    }
    return Knowledge(
        routes=routes,
        by_material={k: tuple(v) for k, v in by_material.items()},
        use_nace=use_nace,
        use_labels=use_labels,
        sector_flows={k: tuple(v) for k, v in flows.items()},
        material_sectors={k: tuple(v) for k, v in receivers.items()},
        refinements=refinements,
    )


def knowledge() -> Knowledge:
    return _knowledge(seed_dir())


def use_label(use: str, lang: str = "fr") -> str:
    labels = knowledge().use_labels.get(use)
    if labels is None:
        return vocabulary().label(use, lang)
    return labels[0] if lang == "fr" else labels[1]


# --------------------------------------------------------------------------------------------
# NACE codes
# --------------------------------------------------------------------------------------------

_NACE_IN_TEXT = re.compile(
    r"\b(?:NACE|NAF|APE)(?:\s*Rev\.?\s*2)?\s*:?\s*((?:\d{2}(?:\.\d{1,2})?[A-Z]?[\s/;,]*)+)", re.I
)
_NACE_CODE = re.compile(r"(\d{2})(?:\.(\d{1,2}))?")


def _canonical_nace(division: str, rest: str | None) -> str:
    if not rest:
        return division
    return f"{division}.{rest}"


def parse_nace(naf: str | None, label: str = "") -> list[str]:
    """NACE codes of a firm: its NAF code ("16.10A" → "16.10") and any "NACE xx.xx" in its label."""
    found: list[str] = []
    if naf:
        m = _NACE_CODE.search(naf)
        if m:
            found.append(_canonical_nace(m.group(1), m.group(2)))
    for block in _NACE_IN_TEXT.finditer(label or ""):
        for m in _NACE_CODE.finditer(block.group(1)):
            code = _canonical_nace(m.group(1), m.group(2))
            if code not in found:
                found.append(code)
    return found


def nace_match(code: str, prefix: str) -> float:
    """1 when the firm's code lies inside the sector prefix, 0.4/1 partial when only coarser."""
    if code.startswith(prefix):
        return 1.0
    if prefix.startswith(code):
        # The firm gave only its division ("01") and the sector is a class inside it.
        return EVIDENCE_NACE_DIVISION / EVIDENCE_NACE
    return 0.0


def uses_of_nace(codes: Iterable[str]) -> dict[str, float]:
    """Uses practised by firms of these NACE codes, with an evidence in [0, 1]."""
    return dict(_uses_of_nace(seed_dir(), tuple(codes)))


@functools.lru_cache(maxsize=4096)
def _uses_of_nace(directory: Path, codes: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    out: dict[str, float] = {}
    if not codes:
        return ()
    for use, prefixes in _knowledge(directory).use_nace.items():
        best = 0.0
        for code in codes:
            for prefix in prefixes:
                best = max(best, nace_match(code, prefix))
        if best > 0.0:
            out[use] = EVIDENCE_NACE * best
    return tuple(out.items())


# --------------------------------------------------------------------------------------------
# Routes of a material, uses of a need
# --------------------------------------------------------------------------------------------


def refine_materials(concepts: Iterable[str], nace_codes: Iterable[str]) -> list[str]:
    """Generic materials read in the light of the source's sector: "ash" from a sawmill or a paper
    mill is wood ash, "sludge" from a sewage works is sewage sludge, "marc" from a winery is grape
    marc (``seed/source_refinements.csv``). The most specific sector prefix wins."""
    refinements = knowledge().refinements
    codes = list(nace_codes)
    out: list[str] = []
    for cid in concepts:
        refined = cid
        best_len = -1
        for code in codes:
            for prefix in nace_prefixes(code):
                found = refinements.get((cid, prefix))
                if found is not None and len(prefix) > best_len:
                    refined, best_len = found, len(prefix)
        if refined not in out:
            out.append(refined)
    return out


# A route known for the material itself is surer than one inherited from what it is a kind of
# (organic waste → composting for whey), and surer still than one known only for its family.
ANCESTOR_ROUTE_FACTOR = 0.85
FAMILY_ROUTE_FACTOR = 0.7


def material_routes(concepts: Iterable[str], families: Iterable[str]) -> dict[str, Route]:
    """For each use, the strongest route open to a material with these concepts and families.

    Routes of a concept's ancestors count at ``ANCESTOR_ROUTE_FACTOR``, routes of its families at
    ``FAMILY_ROUTE_FACTOR``; a route to a use also opens, weaker, the use's parents.
    """
    k = knowledge()
    vocab = vocabulary()
    keys: list[tuple[str, float]] = []
    for cid in concepts:
        keys.append((cid, 1.0))
        keys.extend((anc, ANCESTOR_ROUTE_FACTOR) for anc in vocab.ancestors(cid))
    keys.extend(("family:" + fam, FAMILY_ROUTE_FACTOR) for fam in families if fam)
    best: dict[str, Route] = {}
    for key, factor in keys:
        for route in k.by_material.get(key, ()):
            strength = route.strength * factor
            current = best.get(route.use)
            if current is None or strength > current.strength:
                best[route.use] = route if factor == 1.0 else replace(route, strength=strength)
    for use, route in list(best.items()):
        strength = route.strength
        for parent in vocab.ancestors(use):
            strength *= USE_PARENT_FACTOR
            current = best.get(parent)
            if current is None or strength > current.strength:
                best[parent] = Route(material=route.material, use=parent, strength=strength, source=route.source)
    return best


def with_parent_uses(uses: dict[str, float]) -> dict[str, float]:
    """``uses`` and, weaker by ``USE_PARENT_FACTOR`` per level, the uses they are kinds of."""
    vocab = vocabulary()
    out = dict(uses)
    for use, value in uses.items():
        for parent in vocab.ancestors(use):
            value *= USE_PARENT_FACTOR
            if value > out.get(parent, 0.0):
                out[parent] = value
    return out


def need_uses(text_uses: Iterable[str], label_uses: Iterable[str], nace_codes: Iterable[str],
              names_material: bool = False) -> dict[str, float]:
    """Uses a need asks for, with the evidence of each (its words, its sector label, its NACE).

    A need that says what it wants, a use or a material ("cuves IBC"), owes less to what its sector
    usually takes: those uses count ``SECTOR_ONLY_FACTOR`` as much."""
    by_nace = uses_of_nace(nace_codes)
    text, label = set(text_uses), set(label_uses)
    out: dict[str, float] = {}
    for use in text | label | set(by_nace):
        value = combine(
            EVIDENCE_TEXT if use in text else 0.0,
            EVIDENCE_SECTOR_LABEL if use in label else 0.0,
            by_nace.get(use, 0.0),
        )
        if (text or names_material) and use not in text:
            value *= SECTOR_ONLY_FACTOR
        out[use] = value
    return with_parent_uses(out)


# Uses that take the object itself: a need that names its material (reclaimed stones, steel tubes
# for reuse, pallets) wants that object again, so another object's route to the same use is no
# answer (pallets are no plywood, bumpers no hangers), whereas litter, energy or compost may well
# take a substitute.
MATERIAL_BOUND_USES = frozenset({"use_reuse"})
# Families that name no one material: a need in one of them takes any material's reuse.
OPEN_FAMILIES = frozenset({"mixed_waste", "packaging_mixed", "mixed_metals"})
# What another family's route is worth to a need that names its material (grouped CV among 1, 0.7,
# 0.5 and 0.3: heavy-industry MRR 0.318 → 0.322 at 0.7, SMEs unchanged), and another object of the
# same family to a reuse (CV alike from 0.5 to 0.8; 0.8 keeps the development file's guard).
OTHER_FAMILY_ROUTE = 0.7
OTHER_MATERIAL_REUSE = 0.8


def _binding(materials: Sequence[str], families: Sequence[str]) -> str | None:
    """What a need's material-bound uses are tied to: the material it names first, else its main
    family; nothing when that family is open."""
    if families and families[0] in OPEN_FAMILIES:
        return None
    return materials[0] if materials else (families[0] if families else None)


def need_route_features(uses: dict[str, float], nace_codes: Iterable[str],
                        families: Sequence[str] = (), materials: Sequence[str] = ()) -> dict[str, float]:
    """Route features of a need (before powering): its uses with their evidence; a material-bound
    use is tied to the material the need names (``_binding``)."""
    binding = _binding(materials, families)
    family = families[0] if materials and families and families[0] not in OPEN_FAMILIES else None
    out: dict[str, float] = {}
    for use, value in uses.items():
        if value <= 0.0:
            continue
        if use in MATERIAL_BOUND_USES and binding is not None:
            out[f"u:{use}@{binding}"] = value
            if family is not None and family != binding:
                # Another object of the same family may do, less surely (cheese boxes for waste wood).
                out[f"u:{use}@{family}"] = value * OTHER_MATERIAL_REUSE
        elif family is not None:
            # A need that names its material owes a route from another family less: a substitute
            # may do (sawdust for litter of shredded paper), the named material more surely.
            out[f"f:{use}@{family}"] = value
            out["u:" + use] = value * OTHER_FAMILY_ROUTE
        else:
            out["u:" + use] = value
    return out


def offer_route_features(uses: dict[str, float], nace_codes: Iterable[str],
                         families: Sequence[str] = (), materials: Sequence[str] = ()) -> dict[str, float]:
    """Route features of an offer (before powering): the uses open to its material, and each
    material-bound one again for each of its families, materials and the kinds they are."""
    vocab = vocabulary()
    tied = dict.fromkeys((*families, *materials, *(a for m in materials for a in vocab.ancestors(m))))
    out: dict[str, float] = {}
    family = families[0] if families else None
    for use, value in uses.items():
        if value > 0.0:
            out["u:" + use] = value
            if use in MATERIAL_BOUND_USES:
                out.update((f"u:{use}@{key}", value) for key in tied)
            elif family is not None:
                out[f"f:{use}@{family}"] = value
    return out


def route_allowed(use: str, offer_route: Mapping[str, float], need_route: Mapping[str, float]) -> bool:
    """Whether an offer's route to ``use`` answers the need, as the route features decide."""
    bound = [key for key in need_route if key.startswith(f"u:{use}@")]
    return not bound or any(key in offer_route for key in bound)


# A flow known only at a finer level than the buyer's code ("01.13" for a farm that gave "01")
# still says something; a flow to a whole division says less about one of its classes.
COARSER_RECEIVER = 0.6


@functools.lru_cache(maxsize=4096)  # few codes, read for every sector feature of every listing
def nace_prefixes(code: str) -> tuple[str, ...]:
    """ "23.51" → ("23", "23.5", "23.51")."""
    division, _, rest = code.partition(".")
    return (division, *(f"{division}.{rest[:i]}" for i in range(1, len(rest) + 1)))


def need_sector_features(nace_codes: Iterable[str]) -> dict[str, float]:
    """Sector features of a need: every prefix of its NACE codes (division, group, class)."""
    out: dict[str, float] = {}
    for code in nace_codes:
        for prefix in nace_prefixes(code):
            out["n:" + prefix] = 1.0
    return out


def sector_flows_from(code: str) -> tuple[tuple[str, float], ...]:
    """Receiving sectors (NACE prefix, strength) known to take by-products of sector ``code``.

    Flows are read at every level of the source code (a steelworks "24.10" also inherits the
    flows of "24.1" and "24"); the strongest reading of each receiver wins.
    """
    return _sector_flows_from(seed_dir(), code)


@functools.lru_cache(maxsize=4096)
def _sector_flows_from(directory: Path, code: str) -> tuple[tuple[str, float], ...]:
    flows = _knowledge(directory).sector_flows
    best: dict[str, float] = {}
    for prefix in nace_prefixes(code):
        for receiver, strength in flows.get(prefix, ()):
            if strength > best.get(receiver, 0.0):
                best[receiver] = strength
    return tuple(sorted(best.items()))


def material_receivers(concepts: Iterable[str], families: Iterable[str]) -> dict[str, float]:
    """Receiving sectors (NACE prefix → strength) known to take a material, from
    ``seed/material_sectors.csv``: for each concept, its own rows or else those of its nearest
    ancestor that has some; the families' rows only when no concept has any (a prior is only as
    good as it is specific: wood ash goes to farms even though ashes in general go to cement)."""
    k = knowledge()
    vocab = vocabulary()
    best: dict[str, float] = {}
    for cid in concepts:
        for key in (cid, *vocab.ancestors(cid)):
            rows = k.material_sectors.get(key)
            if rows:
                for receiver, strength in rows:
                    if strength > best.get(receiver, 0.0):
                        best[receiver] = strength
                break
    if not best:
        for fam in families:
            for receiver, strength in k.material_sectors.get("family:" + fam, ()):
                if strength > best.get(receiver, 0.0):
                    best[receiver] = strength
    return best


def offer_sector_features(
    nace_codes: Iterable[str], concepts: Iterable[str] = (), families: Iterable[str] = ()
) -> dict[str, float]:
    """Sector features of an offer (see ``_offer_sector_features``)."""
    return dict(_offer_sector_features(seed_dir(), tuple(nace_codes), tuple(concepts), tuple(families)))


@functools.lru_cache(maxsize=65_536)
def _offer_sector_features(
    directory: Path, nace_codes: tuple[str, ...], concepts: tuple[str, ...], families: tuple[str, ...]
) -> tuple[tuple[str, float], ...]:
    """Sector features of an offer: the sectors its own sector is known to supply, and the
    sectors known to take its material.

    When both are known, a receiving sector named by both counts fully and one named by either
    alone counts half (the average of the two readings); when only one is known, it counts alone.
    Each receiving prefix is also emitted one level coarser, weaker, so that a buyer known only by
    its division or group still meets a flow recorded at class level.
    """

    def spread(receivers: Iterable[tuple[str, float]]) -> dict[str, float]:
        out: dict[str, float] = {}
        for receiver, strength in receivers:
            for key, value in ((receiver, strength), (_coarser(receiver), strength * COARSER_RECEIVER)):
                if key and value > out.get(key, 0.0):
                    out[key] = value
        return out

    by_source: dict[str, float] = {}
    for code in nace_codes:
        for key, value in spread(sector_flows_from(code)).items():
            by_source[key] = max(by_source.get(key, 0.0), value)
    by_material = spread(material_receivers(concepts, families).items())
    if by_source and by_material:
        # A flow to a group ("01.4") holds for each of its classes ("01.42"): each reading of a
        # key is its own value or the value of a coarser key it falls in.
        def reading(values: dict[str, float], key: str) -> float:
            return max((values.get(p, 0.0) for p in nace_prefixes(key)), default=0.0)

        keys = set(by_source) | set(by_material)
        merged = {k: (reading(by_source, k) + reading(by_material, k)) / 2.0 for k in keys}
    else:
        merged = by_source or by_material
    return tuple(("n:" + k, v) for k, v in merged.items() if v > 0.0)


def _coarser(prefix: str) -> str:
    """The prefix one level up ("23.51" → "23.5", "23.5" → "23"), or "" for a division."""
    levels = nace_prefixes(prefix)
    return levels[-2] if len(levels) > 1 else ""
