"""The List of Waste tree, material families, and a code suggester for free text.

List-of-Waste codes mostly say where a waste comes from, not what it is, so the engine keeps two
views of every listing: the official six-digit code (regulation, hazard) and a material family
(matching, statistics). This module relates codes to codes, families to families, and guesses
both from what a firm typed.
"""

from __future__ import annotations

import csv
import functools
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from matchmaking.matching import nomenclature
from matchmaking.matching.text import Analysis, analyse, seed_dir, vocabulary, weighted_terms

# Code proximity: the same entry says the same source process and material; the same subchapter
# the same kind of process; the same chapter only the same broad industry.
SAME_ENTRY = 1.0
SAME_SUBCHAPTER = 0.6
SAME_CHAPTER = 0.3


def split_code(code: str) -> tuple[str, str, str]:
    """("16", "16 01", "16 01 03") for "16 01 03" (the hazard asterisk is ignored)."""
    compact = "".join(ch for ch in code if ch.isdigit())
    chapter = compact[:2]
    sub = f"{compact[:2]} {compact[2:4]}" if len(compact) >= 4 else ""
    entry = f"{compact[:2]} {compact[2:4]} {compact[4:6]}" if len(compact) >= 6 else ""
    return chapter, sub, entry


def code_proximity(a: str | None, b: str | None) -> float:
    """1.0 same entry, 0.6 same subchapter, 0.3 same chapter, else 0 (or either code missing)."""
    if not a or not b:
        return 0.0
    ca, sa, ea = split_code(a)
    cb, sb, eb = split_code(b)
    if ea and ea == eb:
        return SAME_ENTRY
    if sa and sa == sb:
        return SAME_SUBCHAPTER
    if ca and ca == cb:
        return SAME_CHAPTER
    return 0.0


def normalise_code(text: str | None) -> str | None:
    """Canonical "16 01 03" for a code as people write it, or None when it is not an entry."""
    if not text:
        return None
    return nomenclature.normalise_low_code(text)


def parse_codes(text: str | None) -> list[str]:
    """All entries in a field that may join several codes ("20 01 08|20 01 25")."""
    if not text:
        return []
    found: list[str] = []
    for part in text.replace(";", "|").replace(",", "|").split("|"):
        code = normalise_code(part)
        if code and code not in found:
            found.append(code)
    return found


@functools.cache
def _family_relations(directory: Path) -> dict[tuple[str, str], float]:
    relations: dict[tuple[str, str], float] = {}
    path = directory / "family_relations.csv"
    if path.exists():
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                a, b, value = row["family_a"].strip(), row["family_b"].strip(), float(row["proximity"])
                relations[(a, b)] = value
                relations[(b, a)] = value
    return relations


def family_relations() -> dict[tuple[str, str], float]:
    return _family_relations(seed_dir())


def family_proximity(a: str | None, b: str | None) -> float:
    """1.0 for the same family, the related-family proximity from the seed, else 0."""
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    return family_relations().get((a, b), 0.0)


def related_families(family: str) -> dict[str, float]:
    """The family itself (1.0) and its related families with their proximity."""
    out = {family: 1.0}
    for (a, b), value in family_relations().items():
        if a == family:
            out[b] = value
    return out


def family_of_code(code: str | None) -> str | None:
    if not code:
        return None
    entry = nomenclature.low_by_code().get(code)
    return entry.family if entry is not None else None


def is_hazardous_code(code: str | None) -> bool:
    if not code:
        return False
    entry = nomenclature.low_by_code().get(code)
    return bool(entry is not None and entry.hazardous)


def families_from_analysis(analysis: Analysis) -> list[str]:
    """Material families named by the concepts of a text, most frequent first."""
    vocab = vocabulary()
    counts: Counter[str] = Counter()
    for cid in analysis.materials:
        fam = vocab.family_of(cid)
        if fam:
            counts[fam] += 1
    return [fam for fam, _ in counts.most_common()]


def infer_family(text: str, low_code: str | None = None, family: str | None = None) -> str | None:
    """The listing's material family: as declared, else from its text, else from its code."""
    if family:
        return family
    fams = families_from_analysis(analyse(text))
    if fams:
        return fams[0]
    return family_of_code(normalise_code(low_code))


# --------------------------------------------------------------------------------------------
# Code suggestion
# --------------------------------------------------------------------------------------------


_HAZARD_WORDS = frozenset(
    {
        "dangereu",
        "dangereuse",
        "hazardou",
        "hazardous",
        "contamine",
        "contaminee",
        "contaminated",
        "pollue",
        "polluee",
        "toxique",
        "toxic",
        "amiante",
        "asbesto",
        "souille",
        "souillee",
    }
)


@functools.cache
def _concept_codes(directory: Path) -> dict[str, tuple[tuple[str, float], ...]]:
    out: dict[str, list[tuple[str, float]]] = {}
    path = directory / "concept_codes.csv"
    if path.exists():
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                code = normalise_code(row["code"])
                if code:
                    out.setdefault(row["concept"].strip(), []).append((code, float(row["weight"])))
    return {k: tuple(v) for k, v in out.items()}


def concept_codes() -> dict[str, tuple[tuple[str, float], ...]]:
    """The codes a French firm uses for each material concept (``seed/concept_codes.csv``):
    lactosérum → 02 05 01, palettes → 15 01 03, ferraille → 17 04 05 / 19 12 02 …, weighted."""
    return _concept_codes(seed_dir())


@functools.cache
def _code_materials(directory: Path) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for concept, codes in _concept_codes(directory).items():
        for code, weight in codes:
            if weight >= CODE_MATERIAL_MIN_WEIGHT:
                out.setdefault(code, []).append(concept)
    return {k: tuple(v) for k, v in out.items()}


# A code says what the material is only where firms use it first for that material.
CODE_MATERIAL_MIN_WEIGHT = 0.9


def materials_of_codes(codes: Iterable[str]) -> list[str]:
    """Material concepts for which these codes are the usual entries (``concept_codes``)."""
    table = _code_materials(seed_dir())
    out: list[str] = []
    for code in codes:
        for concept in table.get(code, ()):
            if concept not in out:
                out.append(concept)
    return out


@dataclass(frozen=True, slots=True)
class CodeSuggestion:
    codes: list[tuple[str, float]]  # up to k (code, score in [0, 1]), best first
    family: str | None  # the material family the text points to


class CodeSuggester:
    """Ranks List-of-Waste entries for a free-text description in French or English.

    Each entry is indexed by the words and concepts of its French and English labels; a query is
    compared by cosine similarity, and entries of the family the query's materials belong to get a
    bonus (the label wording often names the source, the family names the material). Labels alone
    cannot tell "lactosérum" (02 05 01, dairy) from a dozen entries that all read "matières impropres
    à la consommation", so when the text names a material with known codes (``concept_codes``),
    those codes lead: ``score = (1 − w) × label_share × label score + w × preference`` with
    ``w = preference_weight``; a preferred entry passes one whose label merely repeats the words
    ("ferraille" → 17 04 05 before 20 01 40 "métaux", "verre" → 20 01 02 before 19 12 05), and the
    label score still orders the rest. A concept without
    preferred codes borrows those of its nearest ancestor, weaker; the text's first material counts
    most.
    """

    family_bonus = 0.25
    hazardous_factor = 0.92
    preference_weight = 0.6
    label_share = 0.9
    ancestor_factor = 0.8
    later_material_factor = 0.9

    def __init__(self, entries: Iterable[nomenclature.LowEntry]) -> None:
        self.codes: list[str] = []
        self.families: list[str | None] = []
        self.hazardous: list[bool] = []
        self._term_index: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for entry in entries:
            if entry.level != "entry":
                continue
            analysis = analyse(entry.label_fr + " . " + entry.label_en)
            weights = weighted_terms(analysis.tokens, analysis.concepts, concept_weight=6.0)
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            row = len(self.codes)
            for term, w in weights.items():
                col = self._term_index.setdefault(term, len(self._term_index))
                rows.append(row)
                cols.append(col)
                vals.append(w / norm)
            self.codes.append(entry.code)
            self.families.append(entry.family)
            self.hazardous.append(entry.hazardous)
        self._matrix_t = sparse.csr_matrix(
            (vals, (cols, rows)), shape=(len(self._term_index), len(self.codes)), dtype=np.float64
        )
        fam_names = sorted({f for f in self.families if f})
        self._family_ids = {f: i for i, f in enumerate(fam_names)}
        self._entry_family = np.array([self._family_ids.get(f or "", -1) for f in self.families])
        self._hazardous = np.array(self.hazardous, dtype=bool)
        row_of = {code: i for i, code in enumerate(self.codes)}
        self._preferred: dict[str, tuple[tuple[int, float], ...]] = {
            concept: tuple((row_of[code], w) for code, w in codes if code in row_of)
            for concept, codes in concept_codes().items()
        }

    def preference(self, materials: Iterable[str]) -> np.ndarray:
        """Per entry, how much the text's materials prefer it (0 … 1)."""
        pref = np.zeros(len(self.codes))
        vocab = vocabulary()
        for rank, cid in enumerate(materials):
            factor = self.later_material_factor**rank
            for key in (cid, *vocab.ancestors(cid)):
                rows = self._preferred.get(key)
                if rows:
                    for row, w in rows:
                        pref[row] = max(pref[row], w * factor)
                    break
                factor *= self.ancestor_factor
        return pref

    def suggest(self, text: str, k: int = 5) -> CodeSuggestion:
        analysis = analyse(text)
        fams = families_from_analysis(analysis)
        family = fams[0] if fams else None
        weights = weighted_terms(analysis.tokens, analysis.concepts, concept_weight=6.0)
        idx = [(self._term_index[t], w) for t, w in weights.items() if t in self._term_index]
        materials = analysis.materials
        if not idx and family is None and not materials:
            return CodeSuggestion(codes=[], family=None)
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        scores = np.zeros(len(self.codes))
        if idx:
            q = sparse.csr_matrix(
                ([w / norm for _, w in idx], ([0] * len(idx), [i for i, _ in idx])),
                shape=(1, self._matrix_t.shape[0]),
            )
            scores = np.asarray((q @ self._matrix_t).todense()).ravel()
        if family is not None and family in self._family_ids:
            scores = scores + self.family_bonus * (self._entry_family == self._family_ids[family])
        if not _HAZARD_WORDS.intersection(analysis.tokens):
            # Without a word about hazard, the non-hazardous twin of a mirror entry comes first.
            scores = scores * np.where(self._hazardous, self.hazardous_factor, 1.0)
        scores = np.minimum(scores, 1.0)
        if materials:
            pref = self.preference(materials)
            if pref.any():
                w = self.preference_weight
                scores = (1.0 - w) * self.label_share * scores + w * pref
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k > 0 else np.array([], dtype=int)
        top = top[np.argsort(-scores[top], kind="stable")]
        codes = [(self.codes[i], round(float(scores[i]), 4)) for i in top if scores[i] > 0.0]
        return CodeSuggestion(codes=codes, family=family)


@functools.cache
def _suggester(directory: Path) -> CodeSuggester:
    return CodeSuggester(nomenclature.list_of_waste())


def suggester() -> CodeSuggester:
    return _suggester(seed_dir())


def suggest_codes(text: str, k: int = 5) -> CodeSuggestion:
    """Up to ``k`` List-of-Waste entries for a description, with the material family."""
    return suggester().suggest(text, k)
