"""The score of an offer/need pair, in [0, 1], and its explanation.

Two groups of components:

* material relevance ``M`` (does this material serve this need?): text similarity, material
  proximity (the same concept, or one a kind of the other; a material a need names only as what it
  makes counts less), List-of-Waste code proximity, and valorisation-route fit (a known route from
  the offer's material to a use the need names or the buyer's sector practises, weighed by how
  usual the flow is between the two firms' sectors, see ``components_from_blocks``);
* context ``C`` (is the exchange practical?): distance decay, quantity and rhythm, availability.

``score = M × (1 − CONTEXT_SHARE + CONTEXT_SHARE × C)``: context can lower a relevant pair but never
lift an irrelevant one. Gates give 0 outright: a hazardous offer to a need that cannot take it, a
site beyond the need's radius, a lot the seller cannot fill. All weights are in ``WEIGHTS`` below.

Each material component is a p-norm of the element-wise product of two sparse feature vectors
(p = 1 for the text cosine, p = 8, a smooth maximum, for the others), so that the engine computes
them for thousands of pairs with sparse matrix products and a single pair gives the same number.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matchmaking.matching import geo, law, quantities, ranker, routes, taxonomy
from matchmaking.matching.records import NEED, OFFER, Listing
from matchmaking.matching.text import (
    MATERIAL,
    Analysis,
    analyse,
    seed_dir,
    split_origin,
    split_purpose,
    tokenize,
    vocabulary,
    weighted_terms,
)

# ---------------------------------------------------------------------------------------------
# Weights: the material ones are learned (``ranker``, ``seed/model.json``); the context ones are a
# stated prior, since the public exchanges the model learns from give no places or quantities.
# ---------------------------------------------------------------------------------------------
CONTEXT_WEIGHTS: dict[str, float] = {"distance": 0.5, "quantity": 0.3, "availability": 0.2}


class _Weights(Mapping[str, float]):
    """Every component's weight: the model's material weights (read once per seed directory),
    then the context prior."""

    def _all(self) -> dict[str, float]:
        return _weights_of(ranker.model())

    def __getitem__(self, name: str) -> float:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


@functools.lru_cache(maxsize=8)
def _weights_of(model: ranker.Model) -> dict[str, float]:
    return {**model.material_weights(), **CONTEXT_WEIGHTS}


WEIGHTS: Mapping[str, float] = _Weights()
MATERIAL_COMPONENTS = ("text", "material", "code", "route")
CONTEXT_COMPONENTS = ("distance", "quantity", "availability")
CONTEXT_SHARE = 0.4
MIN_SCORE = 0.05  # below this a pair is not reported as a match
P_NORM = 8.0  # smooth maximum for the material, code and route components
# Feature blocks: one sparse product each. The four material components, plus ``sector``: how
# often firms of the offer's sector supply firms of the need's sector (``seed/sector_flows.csv``).
# The sector block only modulates the route component (see ``components_from_blocks``), so a pair
# that shares nothing but sectors scores 0 and is never a candidate.
FEATURE_BLOCKS = ("text", "material", "code", "route", "sector")
CANDIDATE_BLOCKS = MATERIAL_COMPONENTS
POWER = {"text": 1.0, "material": P_NORM, "code": P_NORM, "route": P_NORM, "sector": P_NORM}
# The flow assumed when either firm's sector is unknown (or knows no flows): neither a bonus nor a
# penalty against firms whose sectors are known. The share of the route component that depends on
# the sector flow is learned (``ranker.Model.route_sector_share``).
SECTOR_UNKNOWN = 0.5

# Text features: how much each field counts, and the weight of a shared concept next to words.
TITLE_WEIGHT = 1.0
DESCRIPTION_WEIGHT = 0.6
SECTOR_WEIGHT_NEED = 0.5
SECTOR_WEIGHT_OFFER = 0.0
CONCEPT_WEIGHT = 5.0
# Words read as a use ("water treatment", "cement production") say what the material becomes,
# not what it is: they count less in the text similarity, the route component carries them.
USE_WORD_FACTOR = 0.3
# Where an offer comes from ("from the sugar crystallisation process") says little of the material.
ORIGIN_WEIGHT = 0.3
# Material proximity levels.
LEVEL_EXACT = 1.0
LEVEL_PARENT = 0.8  # one material is a kind of the other (sawdust, wood residue)
# Two kinds of the same material (sawdust, shavings) or the same family only (spent grain, whey):
# a need that names a neighbouring material is no better a partner than one that names none
# (both folds of the development set, by source, agree; see tests/matching/holdout.py), so these
# relations add nothing to the score; the explanation still says "même famille".
LEVEL_SIBLING = 0.0
LEVEL_FAMILY = 0.0
LEVEL_PRODUCT = 0.8  # a need names the material only as what it makes ("zinc production")
OFFER_DECLARED_USE = 0.8  # an offer that names a use ("pour méthanisation") opens that route

GATE_HAZARD = "hazard"
GATE_RADIUS = "radius"
GATE_LOT = "lot"
GATE_LAW = "law"


# ---------------------------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------------------------


# Not frozen: an index builds hundreds of thousands of profiles, and a frozen dataclass takes five
# times as long to build. Nothing changes a profile once built.
@dataclass(slots=True)
class Profile:
    """What the scorer needs of a listing, computed once."""

    listing: Listing
    analysis: Analysis
    label_uses: tuple[str, ...]
    families: tuple[str, ...]
    codes: tuple[str, ...]
    nace: tuple[str, ...]
    uses: dict[str, float]  # needs: use → evidence; offers: use → route strength
    route_of_use: dict[str, routes.Route]  # offers: the route behind each use
    features: dict[str, dict[str, float]]  # component → feature → value (already ** power)
    hazardous: bool
    annual_tonnes: float | None
    frequency_code: int
    from_ordinal: float
    until_ordinal: float
    law_facts: law.OfferFacts | None  # offers: what the law's rules read of them
    named_uses: tuple[str, ...]  # needs: what the law reads of them (``_law_uses``)
    forbids: int  # offers: bits of the law's rules they fall under
    use_bits: int  # needs: bits of the law's rules whose uses they name

    @property
    def kind(self) -> str:
        return self.listing.kind


def _ordinal(d: date | None, default: float) -> float:
    return float(d.toordinal()) if d is not None else default


def _powered(features: Mapping[str, float], power: float) -> dict[str, float]:
    return {k: v**power for k, v in features.items() if v > 0.0}


@dataclass(slots=True)  # not frozen, as ``Profile``
class _Content:
    analysis: Analysis
    label_uses: tuple[str, ...]
    families: tuple[str, ...]
    codes: tuple[str, ...]
    nace: tuple[str, ...]
    uses: dict[str, float]
    route_of_use: dict[str, routes.Route]
    features: dict[str, dict[str, float]]
    code_hazardous: bool
    law_facts: law.OfferFacts | None
    named_uses: tuple[str, ...]


@dataclass(slots=True)  # not frozen, as ``Profile``
class _Words:
    """What a listing's words say, before its codes and sector are read."""

    title: Analysis
    description: Analysis | None
    concepts: tuple[str, ...]
    term_weights: tuple[tuple[str, float], ...]
    materials: tuple[str, ...]
    qualifiers: tuple[str, ...]  # materials the title names after its head ("de palettes"): the law reads them
    text_uses: tuple[str, ...]
    title_uses: tuple[str, ...]  # the uses the title (with its purpose) names
    label_uses: tuple[str, ...]
    products: tuple[str, ...]


@functools.lru_cache(maxsize=65_536)
def _words(kind: str, title: str, description: str, sector_label: str) -> _Words:
    """The part of ``_content`` that depends on the words only (cached apart: the same words come
    with many codes and sectors)."""
    vocab = vocabulary()
    is_need = kind == NEED
    # What a title says in parentheses is a side remark ("(after treatment: … into biogas)",
    # "(avec copeaux de bois)"): it counts like the description, and names no use of its own.
    main_title, aside = split_aside(title)
    # An offer's title often says where the material comes from ("Soil separated during sugar
    # beet washing"): the source is context, not the material, and names no use.
    # A need's title says what it wants, then what for ("Raw material for a paper manufacturer"):
    # materials named in the purpose are what the buyer makes, not what it asks for.
    head, origin = (main_title, "") if is_need else split_origin(main_title)
    purpose = ""
    if is_need:
        head, purpose = split_purpose(head)
    title_a = analyse(head)
    aside_a = analyse(aside) if aside else None
    origin_a = analyse(origin) if origin else None
    purpose_a = analyse(purpose) if purpose else None
    desc = analyse(description) if description else None
    sector = analyse(sector_label) if sector_label else None

    def is_material(cid: str) -> bool:
        return vocab.concepts[cid].kind == MATERIAL

    concepts: list[str] = list(title_a.concepts)
    tokens_weights: dict[str, float] = {}

    seed = seed_dir()

    def add_terms(a: Analysis, factor: float) -> None:
        if factor <= 0.0:
            return
        for term, w in _token_weights(seed, a.tokens):
            if term in a.use_tokens:
                w *= USE_WORD_FACTOR
            tokens_weights[term] = max(tokens_weights.get(term, 0.0), w * factor)

    add_terms(title_a, TITLE_WEIGHT)
    if purpose_a is not None:
        add_terms(purpose_a, TITLE_WEIGHT)
        concepts.extend(c for c in purpose_a.concepts if c not in concepts and not is_material(c))
    # The title says what the material is; a material the description names in passing ("en big
    # bag", "env. 80 % d'eau") is a material only when the title names none.
    materials = [c for c in concepts if is_material(c)]
    qualifiers = _complement_materials(head, title_a) if not is_need else frozenset()
    materials = [c for c in materials if c not in qualifiers]
    if desc is not None:
        add_terms(desc, DESCRIPTION_WEIGHT)
        concepts.extend(c for c in desc.concepts if c not in concepts)
        if not materials:
            materials = [c for c in concepts if is_material(c)]
    if sector is not None:
        add_terms(sector, SECTOR_WEIGHT_NEED if is_need else SECTOR_WEIGHT_OFFER)
    # An offer's title says what the material is and where it comes from, not where it goes:
    # "Pneus agricoles", "Gravats béton", "Fumier de volailles" name no use. Only a use its
    # description or a purpose in the title ("… pour méthanisation") names opens a route.
    origin_uses: set[str] = set()
    if not is_need:
        offer_purpose = split_purpose(head)[1]
        said = set(desc.concepts if desc is not None else ()) | set(analyse(offer_purpose).concepts
                                                                    if offer_purpose else ())
        origin_uses = {c for c in title_a.concepts if not is_material(c) and c not in said}
    text_uses = [c for c in concepts if not is_material(c) and c not in origin_uses]
    for extra, weight in ((aside_a, DESCRIPTION_WEIGHT), (origin_a, ORIGIN_WEIGHT)):
        if extra is None:
            continue
        add_terms(extra, weight)
        found = [c for c in extra.concepts if is_material(c)]
        if not materials:
            materials = found
        elif extra is origin_a:
            continue  # the source of a named material is not a second material
        concepts.extend(c for c in found if c not in concepts)
    label_uses = tuple(sector.uses) if (sector is not None and is_need) else ()
    # A buyer that makes zinc, glass fibre or paper names, in its use, the material it takes back,
    # when it does not say what it takes: "Caoutchouc pour patins de palettes" asks for rubber, not
    # for pallets.
    products: list[str] = []
    if is_need and not title_a.materials:
        for a in (title_a, purpose_a, desc, aside_a):
            if a is not None:
                products.extend(c for c in a.embedded if c not in materials and c not in products)
        if purpose_a is not None:
            products.extend(
                c for c in purpose_a.concepts if is_material(c) and c not in materials and c not in products
            )
    return _Words(
        title=title_a,
        description=desc,
        concepts=tuple(concepts),
        term_weights=tuple(tokens_weights.items()),
        materials=tuple(materials),
        qualifiers=tuple(sorted(qualifiers)),
        text_uses=tuple(text_uses),
        # (the whole title too: "sacs pour farine" names a use its head and purpose do not)
        title_uses=tuple(dict.fromkeys(
            c for a in (title_a, purpose_a, analyse(main_title) if purpose_a is not None else None)
            if a is not None for c in a.concepts if not is_material(c)
        )),
        label_uses=label_uses,
        products=tuple(products),
    )


_COMPLEMENT = re.compile(r"\s+(?:de|des|du|d')\s*|\s+d'", re.IGNORECASE)


def _complement_materials(head: str, whole: Analysis) -> frozenset[str]:
    """Materials an offer's title names only after its head noun: in "Sciure de palettes" or
    "Boues de lavage béton" the material is the sawdust, the sludge; the pallets, the concrete
    say where it comes from. Nothing when the head names no material, or when a name runs across
    the "de" ("marc de café")."""
    m = _COMPLEMENT.search(head)
    if m is None:
        return frozenset()
    first, rest = analyse(head[: m.start()]), analyse(head[m.end():])
    if not first.materials or not set(first.materials) <= set(whole.materials):
        return frozenset()
    return frozenset(c for c in rest.materials if c not in first.materials and c in whole.materials)


def release_words() -> None:
    """Let go of the cached ``_words`` and ``_text_part`` (tens of megabytes after building a
    large index)."""
    _words.cache_clear()
    _text_part.cache_clear()
    law.affirmed.cache_clear()


@functools.lru_cache(maxsize=262_144)
def _content(
    kind: str,
    title: str,
    description: str,
    sector_label: str,
    sector_naf: str | None,
    low_code: str | None,
    extra_low_codes: tuple[str, ...],
    family: str | None,
) -> _Content:
    """The part of a profile that depends on words and codes only (cached: texts repeat)."""
    vocab = vocabulary()
    is_need = kind == NEED
    words = _words(kind, title, description, sector_label)
    concepts = list(words.concepts)
    materials = list(words.materials)
    text_uses, label_uses, products = words.text_uses, words.label_uses, words.products
    seed = seed_dir()

    # Codes.
    parsed, code_hazardous = _code_facts(seed, low_code, extra_low_codes)
    codes: list[str] = list(parsed)
    if not materials and not is_need:
        # Words that name no known material: a specific entry of the List of Waste does
        # (10 02 02 is slag, 02 05 01 whey), read through the codes firms use for each material.
        materials = taxonomy.materials_of_codes(codes)
        concepts.extend(c for c in materials if c not in concepts)

    named = (*materials, *words.qualifiers)  # the law reads every material the title names
    if not is_need and materials:
        materials, concepts = _as_declared(materials, concepts, codes, family)

    nace = _nace(sector_naf, sector_label)
    if not is_need and nace:
        refined = list(_refined(seed, tuple(materials), nace))
        if refined != materials:
            concepts = [c for c in concepts if c not in materials] + refined
            materials = refined

    # Families.
    families: list[str] = []
    if family:
        families.append(family)
    for cid in materials:
        fam = vocab.family_of(cid)
        if fam and fam not in families:
            families.append(fam)
    if not families:
        # The code's family only when the words name none: codes describe the source.
        for code in codes:
            fam = taxonomy.family_of_code(code)
            if fam and fam not in families:
                families.append(fam)

    text_features, analysis = _text_part(kind, title, description, sector_label, tuple(concepts))

    mat = _material_block(seed, tuple(materials), products, tuple(families), is_need)
    code_features = _code_block(tuple(codes))
    asked = _asked_uses(words.title_uses, text_uses, materials, families) if is_need else text_uses
    uses, route_of_use, route_features, sector_features = _valorisation(
        seed, is_need, tuple(materials), tuple(families), asked, label_uses, nace
    )
    affirmed = law.affirmed(f"{title}\n{description}") + _sector_tokens(sector_label)  # what the law reads
    return _Content(
        analysis=analysis,
        label_uses=label_uses,
        families=tuple(families),
        codes=tuple(codes),
        nace=nace,
        uses=uses,
        route_of_use=route_of_use,
        features={
            "text": text_features,
            "material": mat,
            "code": code_features,
            "route": route_features,
            "sector": sector_features,
        },
        code_hazardous=code_hazardous,
        law_facts=None if is_need else law.offer_facts(
            (*families, *(f for m in named if (f := vocab.family_of(m)) and f not in families)),
            tuple(dict.fromkeys((*materials, *named))), codes, affirmed, nace, code_hazardous,
        ),
        named_uses=_law_uses(words.title_uses, text_uses, label_uses, uses, materials, families, affirmed)
        if is_need else (),
    )


@functools.lru_cache(maxsize=16_384)
def _open_uses(materials: tuple[str, ...], families: tuple[str, ...]) -> frozenset[str]:
    """The uses a material with these concepts and families has a route to (cached: few combinations)."""
    return frozenset(routes.material_routes(materials, families))


# Families whose materials a livestock farm asks for to feed its animals (bread, whey, spent grain).
FEED_FAMILIES = frozenset({"food_organics"})


def _asked_uses(
    title_uses: Sequence[str], text_uses: Sequence[str], materials: Sequence[str], families: Sequence[str],
    keep: frozenset[str] = frozenset(),
) -> tuple[str, ...]:
    """The uses a need asks for. What its title asks for counts; a use its description names counts
    when the material it names can go there (big bags "to store feed" ask for no feed), or when it
    is in ``keep``. Litter "for poultry" asks for litter: the animals are its setting, not a use."""
    asked = list(dict.fromkeys(title_uses))
    open_uses = _open_uses(tuple(materials), tuple(families)) if (materials or families) else None
    asked += [u for u in text_uses if u not in asked and (open_uses is None or u in open_uses or u in keep)]
    if "use_animal_bedding" in asked and "use_animal_feed" not in asked:
        asked = [u for u in asked if u != "use_livestock"]
    elif "use_livestock" in asked and families and set(families) <= FEED_FAMILIES:
        # Bread "for the pigs" asks for feed: the animals say who eats it, not that any litter will do.
        asked = list(dict.fromkeys("use_animal_feed" if u == "use_livestock" else u for u in asked))
    return tuple(asked)


# Families a code says nothing specific about: "not otherwise specified" entries and mixtures.
_VAGUE_FAMILIES = frozenset({"mixed_waste", "packaging_mixed"})


def _as_declared(
    materials: list[str], concepts: list[str], codes: Sequence[str], family: str | None
) -> tuple[list[str], list[str]]:
    """An offer's materials, less those its declared code or family contradicts: the firm's code
    weighs more than a word in passing ("Os et carcasses", 02 02 02, is no car body). When the
    words name no material of the declared family, the code's usual materials stand instead."""
    vocab = vocabulary()
    declared = {f for f in (family, *(taxonomy.family_of_code(c) for c in codes if not c.endswith("99")))
                if f and f not in _VAGUE_FAMILIES}
    if not declared:
        return materials, concepts

    def fits(cid: str) -> bool:
        fam = vocab.family_of(cid)
        return fam is None or any(taxonomy.family_proximity(fam, d) > 0 or taxonomy.family_proximity(d, fam) > 0
                                  for d in declared)

    kept = [c for c in materials if fits(c)]
    if len(kept) == len(materials):
        return materials, concepts
    if not kept:
        kept = taxonomy.materials_of_codes(codes)
    dropped = set(materials) - set(kept)
    return kept, [c for c in concepts if c not in dropped] + [c for c in kept if c not in concepts]


def _law_uses(
    title_uses: Sequence[str], text_uses: Sequence[str], label_uses: Sequence[str], sector_uses: Iterable[str],
    materials: Sequence[str], families: Sequence[str], tokens: Sequence[str],
) -> tuple[str, ...]:
    """The uses (and ``concept:`` materials) the law reads of a need: what it asks for
    (``_asked_uses``, with where it will be, ``law.SETTING_USES``: near food, on a vegetable plot);
    its sector speaks only of uses the material it names can go to (a farm's pallets are not feed,
    its bread is); nothing for a take-back ("collecte", "reprise"): a collector hands the material
    on, it does not use it. ``tokens`` are the need's affirmed words: "sans agrément sanitaire" is
    no approval, "pas de reprise" no take-back."""
    if not text_uses and law.TAKE_BACK_WORDS.intersection(tokens):
        return (law.TAKE_BACK,)
    asked = _asked_uses(title_uses, text_uses, materials, families, keep=law.SETTING_USES)
    inferred: Sequence[str] = label_uses if (text_uses or label_uses) else tuple(sector_uses)
    if materials or families:
        open_uses = _open_uses(tuple(materials), tuple(families))
        inferred = [u for u in inferred if u in open_uses]
    # The materials it names too: some rules forbid a material to a need for another ("topsoil").
    approved = (law.APPROVED,) if law.APPROVED_WORDS.intersection(tokens) else ()
    return tuple(dict.fromkeys((*asked, *inferred, *(f"concept:{m}" for m in materials), *approved)))


@functools.lru_cache(maxsize=4096)
def _sector_tokens(sector_label: str) -> tuple[str, ...]:
    return tuple(tokenize(sector_label)) if sector_label else ()


@functools.lru_cache(maxsize=65_536)
def _forbids(facts: law.OfferFacts, hazardous: bool, seed: Path) -> int:
    """Bits of the law's rules an offer falls under (the seed directory ``seed`` keys the cache)."""
    if hazardous and not facts.hazardous:
        facts = dataclasses.replace(facts, hazardous=True)
    return law.rules().offer_mask(facts)


# The parts of a profile made of its materials, codes, uses and sectors: firms with different
# words name the same few of these, so each is built once (and shared: never modified).


@functools.lru_cache(maxsize=65_536)
def _text_part(
    kind: str, title: str, description: str, sector_label: str, concepts: tuple[str, ...]
) -> tuple[dict[str, float], Analysis]:
    """(text features, analysis) of words whose codes and sector leave them these concepts."""
    words = _words(kind, title, description, sector_label)
    # Text vector: words by IDF and concepts, L2-normalised.
    tokens_weights = dict(words.term_weights)
    for cid in concepts:
        tokens_weights["c:" + cid] = CONCEPT_WEIGHT
    norm = math.sqrt(sum(w * w for w in tokens_weights.values()))
    text_features = {k: v / norm for k, v in tokens_weights.items()} if norm > 0 else {}
    title_a, desc = words.title, words.description
    analysis = title_a
    if desc is not None:
        analysis = Analysis(
            tokens=title_a.tokens + desc.tokens, concepts=concepts, surfaces={**desc.surfaces, **title_a.surfaces}
        )
    elif concepts != title_a.concepts:
        analysis = Analysis(tokens=title_a.tokens, concepts=concepts, surfaces=dict(title_a.surfaces))
    return text_features, analysis


@functools.lru_cache(maxsize=4096)
def _nace(sector_naf: str | None, sector_label: str) -> tuple[str, ...]:
    return tuple(routes.parse_nace(sector_naf, sector_label))


@functools.lru_cache(maxsize=16_384)
def _refined(seed: Path, materials: tuple[str, ...], nace: tuple[str, ...]) -> tuple[str, ...]:
    """``routes.refine_materials`` (the seed directory ``seed`` keys the cache)."""
    return tuple(routes.refine_materials(materials, nace))


@functools.lru_cache(maxsize=16_384)
def _material_block(
    seed: Path, materials: tuple[str, ...], products: tuple[str, ...], families: tuple[str, ...], is_need: bool
) -> dict[str, float]:
    """Powered material features (the seed directory ``seed`` keys the cache)."""
    return _powered(material_features(list(materials), list(products), list(families), is_need), POWER["material"])


@functools.lru_cache(maxsize=4096)
def _code_block(codes: tuple[str, ...]) -> dict[str, float]:
    """Powered code proximity features."""
    features: dict[str, float] = {}
    for code in codes:
        chapter, sub, entry = taxonomy.split_code(code)
        features["e:" + entry] = math.sqrt(taxonomy.SAME_ENTRY)
        features["s:" + sub] = math.sqrt(taxonomy.SAME_SUBCHAPTER)
        features["h:" + chapter] = math.sqrt(taxonomy.SAME_CHAPTER)
    return _powered(features, POWER["code"])


@functools.lru_cache(maxsize=16_384)
def _valorisation(
    seed: Path,
    is_need: bool,
    materials: tuple[str, ...],
    families: tuple[str, ...],
    text_uses: tuple[str, ...],
    label_uses: tuple[str, ...],
    nace: tuple[str, ...],
) -> tuple[dict[str, float], dict[str, routes.Route], dict[str, float], dict[str, float]]:
    """(uses, route of each use, powered route features, powered sector features)."""
    route_of_use: dict[str, routes.Route] = {}
    if is_need:
        uses = routes.need_uses(text_uses, label_uses, nace, names_material=bool(materials))
        route_features = routes.need_route_features(uses, nace, families, materials)
        sector_features = routes.need_sector_features(nace)
    else:
        route_of_use = routes.material_routes(materials, families)
        uses = {use: r.strength for use, r in route_of_use.items()}
        for use in text_uses:
            uses[use] = max(uses.get(use, 0.0), OFFER_DECLARED_USE)
        route_features = routes.offer_route_features(uses, nace, families, materials)
        sector_features = routes.offer_sector_features(nace, materials, families)
    return uses, route_of_use, _powered(route_features, POWER["route"]), _powered(sector_features, POWER["sector"])


@functools.lru_cache(maxsize=65_536)
def _token_weights(seed: Path, tokens: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    """``weighted_terms`` of a text's tokens, for the seed directory ``seed`` (cached: the same
    titles and descriptions come back, and each token's weight reads the seed settings)."""
    return tuple(weighted_terms(tokens, (), 0.0).items())


@functools.lru_cache(maxsize=4096)
def _code_facts(seed: Path, low_code: str | None, extra_low_codes: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """(the List-of-Waste entries of a listing, whether one is hazardous), for the seed directory
    ``seed`` (cached: listings give few distinct codes, and each lookup reads the seed settings)."""
    codes: list[str] = []
    for raw in (low_code, *extra_low_codes):
        for code in taxonomy.parse_codes(raw):
            if code not in codes:
                codes.append(code)
    return tuple(codes), any(taxonomy.is_hazardous_code(c) for c in codes)


def material_features(
    materials: list[str], products: list[str], families: list[str], is_need: bool
) -> dict[str, float]:
    """Material proximity features of one side, before powering.

    Each feature is the square root of a level, so that the product of an offer's and a need's
    feature is the level of their relation: the same concept (``x:``), one concept a kind of the
    other (``up:``/``dn:``, sawdust and wood residue), two kinds of the same thing (``sib:``,
    sawdust and shavings) and the same family (``f:``). The keys differ by side so that an ancestor
    of the offer meets only the need that names that ancestor. Materials a need only names inside
    its use (``products``) count at ``LEVEL_PRODUCT``.
    """
    vocab = vocabulary()
    out: dict[str, float] = {}

    def put(key: str, value: float) -> None:
        if value > out.get(key, 0.0):
            out[key] = value

    up, down, sib = math.sqrt(LEVEL_PARENT), math.sqrt(LEVEL_PARENT), math.sqrt(LEVEL_SIBLING)
    for cids, scale in ((materials, 1.0), (products, LEVEL_PRODUCT)):
        for cid in cids:
            ancestors = vocab.ancestors(cid)
            put("x:" + cid, scale * LEVEL_EXACT)
            if is_need:
                put("up:" + cid, scale * up)
                for anc in ancestors:
                    put("dn:" + anc, scale * down)
            else:
                put("dn:" + cid, scale * down)
                for anc in ancestors:
                    put("up:" + anc, scale * up)
            if ancestors and sib > 0.0:
                put("sib:" + ancestors[0], scale * sib)
    if LEVEL_FAMILY > 0.0:
        for fam in families:
            put("f:" + fam, math.sqrt(LEVEL_FAMILY))
    return out


_ASIDE = re.compile(r"\(([^()]*)\)")


def split_aside(title: str) -> tuple[str, str]:
    """("Raw material for X", "after treatment: …") for "Raw material for X (after treatment: …)"."""
    asides = _ASIDE.findall(title)
    if not asides:
        return title, ""
    main = _ASIDE.sub(" ", title).strip()
    if not main:
        return title, ""
    return main, " ".join(asides)


def content_key(listing: Listing) -> tuple[Any, ...]:
    """What a listing's profile content (``_content``, cached) depends on."""
    return (
        listing.kind,
        listing.title,
        listing.description,
        listing.sector_label,
        listing.sector_naf,
        listing.low_code,
        tuple(listing.extra_low_codes),
        listing.family,
    )


def build_profile(listing: Listing) -> Profile:
    """Analyse a listing's text, codes, sector and quantities into scorer features."""
    content = _content(*content_key(listing))
    is_need = listing.kind == NEED
    hazardous = bool(listing.hazardous) or (not is_need and content.code_hazardous)
    freq = quantities.normalise_frequency(listing.frequency)
    seed = seed_dir()
    facts = content.law_facts
    if facts is not None and hazardous != facts.hazardous:
        facts = dataclasses.replace(facts, hazardous=hazardous)
    return Profile(
        listing=listing,
        analysis=content.analysis,
        label_uses=content.label_uses,
        families=content.families,
        codes=content.codes,
        nace=content.nace,
        uses=content.uses,
        route_of_use=content.route_of_use,
        features=content.features,
        hazardous=hazardous,
        annual_tonnes=quantities.annualise(listing.annual_tonnes, listing.lot_tonnes, listing.frequency),
        frequency_code=quantities.FREQUENCY_CODES.get(freq or "", -1),
        from_ordinal=_ordinal(listing.available_from, -math.inf),
        until_ordinal=_ordinal(listing.available_until, math.inf),
        law_facts=facts,
        named_uses=content.named_uses,
        forbids=0 if facts is None else _forbids(facts, hazardous, seed),
        use_bits=_use_bits(content.named_uses, content.nace, seed) if is_need else 0,
    )


@functools.lru_cache(maxsize=16_384)
def _use_bits(uses: tuple[str, ...], nace: tuple[str, ...], seed: Path) -> int:
    """Bits of the law's rules a need's uses fall under (the seed directory ``seed`` keys the cache)."""
    return law.rules().need_mask(uses, nace)


# ---------------------------------------------------------------------------------------------
# Combination (shared by the single-pair and the vectorised paths)
# ---------------------------------------------------------------------------------------------


def finish_component(name: str, summed: NDArray[np.float64]) -> NDArray[np.float64]:
    """From the sum of products of powered features to the component value in [0, 1]."""
    power = POWER[name]
    if power == 1.0:
        return np.clip(summed, 0.0, 1.0)
    # Only where the sum is positive: most are 0, and the power of 0 takes numpy's slow path.
    result: NDArray[np.float64] = np.zeros(np.shape(summed))
    positive = np.flatnonzero(~(np.asarray(summed) <= 0.0))
    result.flat[positive] = np.minimum(1.0, np.power(np.asarray(summed).flat[positive], 1.0 / power))
    return result


def components_from_blocks(
    blocks: Mapping[str, NDArray[np.float64]], sector_known: NDArray[np.bool_] | None = None
) -> dict[str, NDArray[np.float64]]:
    """The four material components from the finished feature blocks.

    ``route = uses × (1 − s + s × sector)``: a known route counts fully between sectors that are
    known to trade such flows, and at ``1 − s`` otherwise; sectors alone give nothing. Where
    ``sector_known`` is False (either side has no sector features) the flow is ``SECTOR_UNKNOWN``.
    """
    out = {name: blocks[name] for name in MATERIAL_COMPONENTS}
    share = ranker.model().route_sector_share()
    sector = blocks["sector"]
    if sector_known is not None:
        sector = np.where(sector_known, sector, SECTOR_UNKNOWN)
    out["route"] = blocks["route"] * ((1.0 - share) + share * sector)
    return out


def sector_known(profile: Profile) -> bool:
    """Whether a listing's sector takes part in the sector flows (an offer's sector has known
    receivers, a need gave a NACE code)."""
    return bool(profile.features["sector"])


def material_relevance(raw: Mapping[str, NDArray[np.float64]]) -> NDArray[np.float64]:
    total = np.zeros_like(raw["text"])
    for name in MATERIAL_COMPONENTS:
        total = total + WEIGHTS[name] * raw[name]
    return total


def context_fit(raw: Mapping[str, NDArray[np.float64]]) -> NDArray[np.float64]:
    total = np.zeros_like(raw["distance"])
    for name in CONTEXT_COMPONENTS:
        total = total + WEIGHTS[name] * raw[name]
    return total


def final_score(
    relevance: NDArray[np.float64], context: NDArray[np.float64], allowed: NDArray[np.bool_]
) -> NDArray[np.float64]:
    score = relevance * ((1.0 - CONTEXT_SHARE) + CONTEXT_SHARE * context)
    result: NDArray[np.float64] = np.where(allowed, np.clip(score, 0.0, 1.0), 0.0)
    return result


@dataclass(frozen=True, slots=True)
class ContextArrays:
    """Per-pair context inputs as arrays (NaN / -1 / ±inf for unknown)."""

    distance_km: NDArray[np.float64]
    radius_km: NDArray[np.float64]  # the need's hard limit
    offer_hazardous: NDArray[np.bool_]
    need_accepts: NDArray[np.bool_]
    offer_annual: NDArray[np.float64]
    offer_lot: NDArray[np.float64]
    offer_freq: NDArray[np.int8]
    need_annual: NDArray[np.float64]
    need_lot: NDArray[np.float64]
    need_freq: NDArray[np.int8]
    offer_from: NDArray[np.float64]
    offer_until: NDArray[np.float64]
    need_from: NDArray[np.float64]
    need_until: NDArray[np.float64]
    offer_forbids: NDArray[np.int64]
    need_uses: NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ContextResult:
    raw: dict[str, NDArray[np.float64]]
    share: NDArray[np.float64]
    gate_hazard: NDArray[np.bool_]
    gate_radius: NDArray[np.bool_]
    gate_lot: NDArray[np.bool_]
    gate_law: NDArray[np.bool_]

    @property
    def allowed(self) -> NDArray[np.bool_]:
        result: NDArray[np.bool_] = ~(self.gate_hazard | self.gate_radius | self.gate_lot | self.gate_law)
        return result


def context_components(ctx: ContextArrays) -> ContextResult:
    distance = geo.distance_decay(ctx.distance_km)
    with np.errstate(invalid="ignore"):
        gate_radius = ctx.distance_km > ctx.radius_km  # NaN (unknown) → False
    gate_hazard = ctx.offer_hazardous & ~ctx.need_accepts
    qfit, share, compatible = quantities.quantity_fit_arrays(
        ctx.offer_annual, ctx.offer_lot, ctx.offer_freq, ctx.need_annual, ctx.need_lot, ctx.need_freq
    )
    avail = quantities.availability_overlap_arrays(ctx.offer_from, ctx.offer_until, ctx.need_from, ctx.need_until)
    return ContextResult(
        raw={"distance": distance, "quantity": qfit, "availability": avail},
        share=share,
        gate_hazard=gate_hazard,
        gate_radius=gate_radius,
        gate_lot=~compatible,
        gate_law=(ctx.offer_forbids & ctx.need_uses) != 0,
    )


# ---------------------------------------------------------------------------------------------
# Explanation
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Component:
    name: str
    raw: float
    weight: float
    contribution: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "raw": self.raw, "weight": self.weight, "contribution": self.contribution}


@dataclass(slots=True)
class Explanation:
    """Why a pair scores what it scores. ``sum(c.contribution for c in components) == score``."""

    offer_id: int
    need_id: int
    score: float
    relevance: float
    context: float
    components: list[Component]
    gates: list[str] = field(default_factory=list)
    shared_words: list[str] = field(default_factory=list)
    shared_concepts: list[str] = field(default_factory=list)
    offer_codes: list[str] = field(default_factory=list)
    need_codes: list[str] = field(default_factory=list)
    offer_family: str | None = None
    need_family: str | None = None
    family_relation: str | None = None  # "same" | "related" | None
    route: dict[str, str] | None = None  # {"material", "use", "label_fr", "label_en", "source"}
    distance_km: float | None = None
    share_of_need: float | None = None
    vetoes: list[dict[str, str]] = field(default_factory=list)  # the law's rules broken, with reasons
    probability: float = 0.0  # the calibrated chance of a real exchange (``ranker``)
    model_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "offer_id": self.offer_id,
            "need_id": self.need_id,
            "score": self.score,
            "relevance": self.relevance,
            "context": self.context,
            "probability": self.probability,
            "model_version": self.model_version,
            "components": [c.to_dict() for c in self.components],
            "gates": list(self.gates),
            "vetoes": [dict(v) for v in self.vetoes],
            "evidence": {
                "shared_words": list(self.shared_words),
                "shared_concepts": list(self.shared_concepts),
                "offer_codes": list(self.offer_codes),
                "need_codes": list(self.need_codes),
                "offer_family": self.offer_family,
                "need_family": self.need_family,
                "family_relation": self.family_relation,
                "route": dict(self.route) if self.route else None,
                "distance_km": self.distance_km,
                "share_of_need": self.share_of_need,
            },
        }

    def phrase(self, lang: str = "fr") -> str:
        """A short line for the interface, e.g. "même famille : caoutchouc · 12 km · couvre 80 % …"."""
        return describe(self, lang)


def _family_label(slug: str | None, lang: str) -> str:
    if not slug:
        return ""
    from matchmaking.matching import nomenclature

    fam = nomenclature.family_by_slug().get(slug)
    if fam is None:
        return slug
    return (fam.label_fr if lang == "fr" else fam.label_en).lower()


def describe(expl: Explanation, lang: str = "fr") -> str:
    fr = lang == "fr"
    parts: list[str] = []
    if expl.gates:
        reasons = {
            GATE_HAZARD: ("matière dangereuse non acceptée", "hazardous material not accepted"),
            GATE_RADIUS: ("hors du rayon de recherche", "outside the search radius"),
            GATE_LOT: ("quantité insuffisante pour un lot", "too little for one lot"),
            GATE_LAW: ("interdit par la réglementation", "forbidden by law"),
        }
        said = [reasons[g][0 if fr else 1] for g in expl.gates if g != GATE_LAW]
        said.extend(v["reason_fr" if fr else "reason_en"] for v in expl.vetoes)
        if GATE_LAW in expl.gates and not expl.vetoes:
            said.append(reasons[GATE_LAW][0 if fr else 1])
        return " · ".join(said)
    vocab = vocabulary()
    if expl.shared_concepts:
        labels = ", ".join(vocab.label(c, lang) for c in expl.shared_concepts[:2])
        parts.append(("même matière : " if fr else "same material: ") + labels)
    elif expl.family_relation == "same" and expl.offer_family:
        parts.append(("même famille : " if fr else "same family: ") + _family_label(expl.offer_family, lang))
    elif expl.family_relation == "related" and expl.offer_family:
        parts.append(("famille voisine : " if fr else "related family: ") + _family_label(expl.offer_family, lang))
    if expl.route:
        parts.append(("filière : " if fr else "route: ") + expl.route["label_fr" if fr else "label_en"])
    if expl.shared_words and not expl.shared_concepts:
        parts.append(("mots communs : " if fr else "shared words: ") + ", ".join(expl.shared_words[:3]))
    if expl.distance_km is not None:
        parts.append(f"{expl.distance_km:.0f} km")
    if expl.share_of_need is not None:
        pct = round(100 * expl.share_of_need)
        parts.append(f"couvre {pct} % de votre besoin annuel" if fr else f"covers {pct}% of the annual need")
    return " · ".join(parts)


# ---------------------------------------------------------------------------------------------
# One pair
# ---------------------------------------------------------------------------------------------


def _sum_products(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b[k] for k, v in a.items() if k in b)


def material_raw(offer: Profile, need: Profile) -> dict[str, float]:
    """The four material components of one pair."""
    blocks: dict[str, NDArray[np.float64]] = {}
    for name in FEATURE_BLOCKS:
        summed = _sum_products(offer.features[name], need.features[name])
        blocks[name] = finish_component(name, np.array([summed]))
    known = np.array([sector_known(offer) and sector_known(need)])
    return {name: float(value[0]) for name, value in components_from_blocks(blocks, known).items()}


def _nanf(x: float | None) -> float:
    return math.nan if x is None else float(x)


def pair_km(offer: Listing, need: Listing) -> float:
    """Distance from an offer's place to a need's, NaN when either is unknown."""
    if not (offer.has_point and need.has_point):
        return math.nan
    assert offer.lat is not None and offer.lon is not None and need.lat is not None and need.lon is not None
    return geo.haversine_km(offer.lat, offer.lon, need.lat, need.lon)


def pair_context(offer: Profile, need: Profile) -> ContextArrays:
    o, n = offer.listing, need.listing
    km = pair_km(o, n)
    return ContextArrays(
        distance_km=np.array([km]),
        radius_km=np.array([geo.effective_radius(n.radius_km)]),
        offer_hazardous=np.array([offer.hazardous]),
        need_accepts=np.array([bool(n.accepts_hazardous)]),
        offer_annual=np.array([_nanf(offer.annual_tonnes)]),
        offer_lot=np.array([_nanf(o.lot_tonnes)]),
        offer_freq=np.array([offer.frequency_code], dtype=np.int8),
        need_annual=np.array([_nanf(need.annual_tonnes)]),
        need_lot=np.array([_nanf(n.lot_tonnes)]),
        need_freq=np.array([need.frequency_code], dtype=np.int8),
        offer_from=np.array([offer.from_ordinal]),
        offer_until=np.array([offer.until_ordinal]),
        need_from=np.array([need.from_ordinal]),
        need_until=np.array([need.until_ordinal]),
        offer_forbids=np.array([offer.forbids], dtype=np.int64),
        need_uses=np.array([need.use_bits], dtype=np.int64),
    )


def explain(offer: Profile, need: Profile, raw_material: Mapping[str, float] | None = None) -> Explanation:
    """Score one pair and say why."""
    if offer.kind != OFFER or need.kind != NEED:
        raise ValueError("explain() takes an offer profile and a need profile")
    mraw = dict(raw_material) if raw_material is not None else material_raw(offer, need)
    pctx = pair_context(offer, need)
    ctx = context_components(pctx)
    craw = {k: float(v[0]) for k, v in ctx.raw.items()}
    relevance = sum(WEIGHTS[k] * mraw[k] for k in MATERIAL_COMPONENTS)
    context = sum(WEIGHTS[k] * craw[k] for k in CONTEXT_COMPONENTS)
    gates: list[str] = []
    if bool(ctx.gate_hazard[0]):
        gates.append(GATE_HAZARD)
    if bool(ctx.gate_radius[0]):
        gates.append(GATE_RADIUS)
    if bool(ctx.gate_lot[0]):
        gates.append(GATE_LOT)
    vetoes: list[dict[str, str]] = []
    if bool(ctx.gate_law[0]) and offer.law_facts is not None:
        gates.append(GATE_LAW)
        vetoes = [
            {"rule": r.id, "reason_fr": r.reason_fr, "reason_en": r.reason_en, "reference": r.reference}
            for r in law.rules().broken(offer.law_facts, need.named_uses, need.nace)
        ]
    allowed = not gates
    # score = M × (1 − s) + M × s × C: the material part, then the context part.
    components: list[Component] = []
    for name in MATERIAL_COMPONENTS:
        contrib = WEIGHTS[name] * mraw[name] * (1.0 - CONTEXT_SHARE) if allowed else 0.0
        components.append(Component(name, mraw[name], WEIGHTS[name], contrib))
    for name in CONTEXT_COMPONENTS:
        contrib = relevance * CONTEXT_SHARE * WEIGHTS[name] * craw[name] if allowed else 0.0
        components.append(Component(name, craw[name], WEIGHTS[name], contrib))
    score = sum(c.contribution for c in components)
    score = min(1.0, max(0.0, score))

    # Evidence.
    vocab = vocabulary()
    o_terms = offer.features["text"]
    n_terms = need.features["text"]
    shared_tokens = sorted(
        (k for k in o_terms if k in n_terms and not k.startswith("c:")),
        key=lambda k: -o_terms[k] * n_terms[k],
    )
    surfaces = {**need.analysis.surfaces, **offer.analysis.surfaces}
    shared_words = [surfaces.get(t, t) for t in shared_tokens]
    o_mat = {c for c in offer.analysis.concepts if vocab.concepts[c].kind == "material"}
    n_mat = {c for c in need.analysis.concepts if vocab.concepts[c].kind == "material"}
    shared_concepts = sorted(o_mat & n_mat)
    relation: str | None = None
    o_fam = offer.families[0] if offer.families else None
    n_fam = need.families[0] if need.families else None
    if offer.families and need.families:
        best = max(taxonomy.family_proximity(a, b) for a in offer.families for b in need.families)
        if best >= 1.0:
            relation = "same"
            o_fam = n_fam = next(a for a in offer.families if a in need.families)
        elif best > 0.0:
            relation = "related"
    route_info: dict[str, str] | None = None
    best_use, best_value = None, 0.0
    for use, strength in offer.uses.items():
        value = strength * need.uses.get(use, 0.0)
        if value > best_value and routes.route_allowed(use, offer.features["route"], need.features["route"]):
            best_use, best_value = use, value
    if best_use is not None:
        r = offer.route_of_use.get(best_use)
        route_info = {
            "material": r.material if r else "",
            "use": best_use,
            "label_fr": r.label("fr") if r else routes.use_label(best_use, "fr"),
            "label_en": r.label("en") if r else routes.use_label(best_use, "en"),
            "source": r.source if r else "",
        }
    km = float(pctx.distance_km[0])
    share = float(ctx.share[0])
    model = ranker.model()
    return Explanation(
        offer_id=offer.listing.id,
        need_id=need.listing.id,
        score=score,
        relevance=relevance,
        context=context,
        components=components,
        gates=gates,
        shared_words=shared_words[:8],
        shared_concepts=shared_concepts,
        offer_codes=list(offer.codes),
        need_codes=list(need.codes),
        offer_family=o_fam,
        need_family=n_fam,
        family_relation=relation,
        route=route_info,
        distance_km=None if math.isnan(km) else round(km, 1),
        share_of_need=None if math.isnan(share) else share,
        vetoes=vetoes,
        probability=float(model.probability(score)) if allowed else 0.0,
        model_version=model.version,
    )


def score_pair(offer: Listing, need: Listing) -> tuple[float, Explanation]:
    """Score and explanation of one offer/need pair (listings in either order)."""
    if offer.kind == NEED and need.kind == OFFER:
        offer, need = need, offer
    expl = explain(build_profile(offer), build_profile(need))
    return expl.score, expl
