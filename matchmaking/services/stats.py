"""Circularity statistics for the CCMA, with disclosure control.

What is counted (the page and the API say the same):

- firms registered by the end of the period; listings published during it, by kind; tonnes offered
  (the annualised tonnes of the offers published);
- the funnel of the matches found during the period, by how far each got since: found → interest
  → accepted → exchanged → recurring;
- tonnes matched (the annual tonnes a match could move: the smaller of the two listings') and
  exchanged (realised exchanges dated in the period), by material family, EWC-Stat category,
  commune and NAF section of the firm the material comes from, and month by month;
- landfill avoided, disposal costs avoided, distance between partners and CO2e avoided, with the
  method and sources of `seed/emission_factors.csv` and `seed/disposal_costs.csv`; "total" counts
  every recorded exchange, "attributable to the service" only those the service brought about.

Disclosure control. A figure built from fewer than 3 distinct firms is never shown. Since any
combination of filters (period, family, commune, NAF section) can be asked for, a shown figure
minus other shown figures must never give a hidden one. Every figure any view can show is a
*box*: a month range and a choice of family (or EWC-Stat category), commune and NAF section, each
one value or all. The base cells (one per month × family × commune × section, and the extra
dimension of each record set) are the unknowns; a box is the sum of its cells. Boxes are released
greedily, most important first (totals, then one breakdown, then two…; long periods first), and a
box is released only if, together with those already released, no linear combination of them
equals a box built from fewer than 3 firms (checked exactly, in reduced row echelon form over a
prime field). Boxes kept back this way are the complementary suppressions. Figures derived with
per-family weights (CO2e, costs) are shown per family only, and totals of them add up the shown
families, so no weighted equation ever helps an attacker. See tests/staff/test_disclosure.py.

Dominance. Three firms are not enough when one of them makes nearly all of a figure: the figure is
then that firm's own volume, and the second firm, subtracting what it knows of its own, learns the
first one's. Tonnes (offered, matched, exchanged) follow the (n, k) dominance rule of official
statistics as well (`confidentiality`): a box is confidential ("secret statistique") when the
firm with the largest part makes more than 85 % of its tonnes, or the two largest more than 90 %
(`Dominance`, settings STATS_DOMINANCE_ONE and STATS_DOMINANCE_TWO). A firm's part is the tonnes of
the records it takes part in (both firms of a match or an exchange know its tonnes), so "the two
largest" is the pair of firms that together took part in the most tonnes. A dominated box joins the
boxes of fewer than 3 firms as one to protect, so the same release keeps back whatever would let it
be worked out by subtraction: no row, column or period total is shown that, minus the figures
shown, gives it back.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

MIN_FIRMS = 3
DOMINANCE_ONE = 0.85  # (1, 85 %): the largest firm makes more than this share of a figure's tonnes
DOMINANCE_TWO = 0.90  # (2, 90 %): the two largest together make more than this share
DEFAULT_MONTHS = 12  # the period shown first: the last 12 months
PRIME = 2_147_483_647  # 2^31 − 1: products of two residues fit in int64
EPOCH_YEAR = 2000


# --- months ------------------------------------------------------------------------------------------


def month_index(day: date) -> int:
    """Months since January 2000: the time axis of every box."""
    return (day.year - EPOCH_YEAR) * 12 + day.month - 1


def month_start(index: int) -> date:
    return date(EPOCH_YEAR + index // 12, index % 12 + 1, 1)


def month_end(index: int) -> date:
    following = month_start(index + 1)
    return date.fromordinal(following.toordinal() - 1)


def month_label(index: int) -> str:
    start = month_start(index)
    return f"{start.year:04d}-{start.month:02d}"


# --- the release engine --------------------------------------------------------------------------------


class Spec(NamedTuple):
    """Everything of a box but its months: None means "all"."""

    family: str | None = None
    category: str | None = None
    commune: str | None = None
    section: str | None = None
    extra: tuple[str, Any] | None = None

    def constraints(self) -> int:
        return sum(x is not None for x in (self.family or self.category, self.commune, self.section, self.extra))


@dataclass(frozen=True)
class Record:
    """One firm-level fact (an exchange, a match, a listing, a firm) placed on the axes."""

    month: int
    family: str
    category: str
    commune: str
    section: str
    firms: frozenset[int]
    values: Mapping[str, float]
    extra: tuple[tuple[str, Any], ...] = ()


# Why a figure is withheld, as the API and the exports name it.
REASONS = {"primary": "fewer_than_3_firms", "dominance": "dominated_by_one_or_two_firms",
           "secondary": "protects_another_figure", "na": "not_applicable"}
WITHHELD = ("primary", "dominance", "secondary")


class Figure(NamedTuple):
    """A figure as any reader gets it: its value, or None and why."""

    value: float | None
    status: str  # shown | empty | primary (fewer than 3 firms) | dominance (one or two firms make most
    #              of it) | secondary (protects another) | na

    @property
    def shown(self) -> bool:
        return self.status in ("shown", "empty")

    @property
    def withheld(self) -> bool:
        return self.status in WITHHELD

    @property
    def reason(self) -> str | None:
        return None if self.shown else REASONS.get(self.status)


@dataclass(frozen=True)
class Dominance:
    """The (n, k) dominance rule's two thresholds: shares of a figure's total."""

    one: float = DOMINANCE_ONE
    two: float = DOMINANCE_TWO


def confidentiality(firms: int, total: float = 0.0, parts: Mapping[int, float] | None = None,
                    shared: Mapping[tuple[int, int], float] | None = None,
                    rule: Dominance | None = None) -> str | None:
    """Why a figure must never be shown by itself, or None when it may be: the one rule every
    view (page, API, CSV and spreadsheet) goes through, by way of `Table`.

    `firms` is how many distinct firms the figure is built from: "primary" below MIN_FIRMS.
    For magnitudes, `total` is the figure, `parts` maps each firm to the sum of the records it
    takes part in and `shared` each pair of firms (smaller id first) to the sum of the records both
    take part in, so that a pair's part is parts[a] + parts[b] − shared[a, b]. "dominance" when the
    largest part is more than `rule.one` of the total, or the largest pair's more than `rule.two`.
    """
    if firms < MIN_FIRMS:
        return "primary"
    if not parts:
        return None
    rule = rule or Dominance()
    shared = shared or {}
    if total <= 0:
        return None
    ranked = sorted(parts.items(), key=lambda kv: -kv[1])
    if ranked[0][1] > rule.one * total:
        return "dominance"
    # The largest pair: c_a + c_b − shared(a, b) ≤ c_a + c_b, so walk pairs by c_a + c_b, largest
    # first, and stop once no untried pair can beat the best found.
    best = 0.0
    for i, (a, ca) in enumerate(ranked):
        if i + 1 >= len(ranked) or ca + ranked[i + 1][1] <= best:
            break
        for b, cb in ranked[i + 1:]:
            if ca + cb <= best:
                break
            best = max(best, ca + cb - shared.get((a, b) if a < b else (b, a), 0.0))
    return "dominance" if best > rule.two * total else None


EMPTY = Figure(0.0, "empty")
PRIORITY_DIM = {"extra": 0, "family": 1, "category": 2, "commune": 3, "section": 4}


def _spec_rank(spec: Spec) -> tuple[int, ...]:
    dims = []
    if spec.extra is not None:
        dims.append(PRIORITY_DIM["extra"])
    if spec.family is not None:
        dims.append(PRIORITY_DIM["family"])
    if spec.category is not None:
        dims.append(PRIORITY_DIM["category"])
    if spec.commune is not None:
        dims.append(PRIORITY_DIM["commune"])
    if spec.section is not None:
        dims.append(PRIORITY_DIM["section"])
    return tuple(sorted(dims))


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def _rows(masks: Sequence[int], n: int) -> NDArray[np.int64]:
    rows = np.zeros((len(masks), n), dtype=np.int64)
    for i, mask in enumerate(masks):
        rows[i, _bits(mask)] = 1
    return rows


def _inverse(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """Modular inverses by Fermat's little theorem, vectorised (squares stay below 2^62)."""
    result = np.ones_like(values)
    base = values % PRIME
    exponent = PRIME - 2
    while exponent:
        if exponent & 1:
            result = (result * base) % PRIME
        base = (base * base) % PRIME
        exponent >>= 1
    return result


def _normalise(rows: NDArray[np.int64]) -> NDArray[np.int64]:
    """Scale each non-zero row so that its first non-zero entry is 1 (a canonical direction)."""
    first = (rows != 0).argmax(axis=1)
    lead = rows[np.arange(len(rows)), first]
    return (rows * _inverse(lead)[:, None]) % PRIME


class _Keys:
    """Two random projections of a normalised row: equal directions give equal keys. A collision
    can only make the release refuse a box it could have shown, never show one it must not."""

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(20240601)
        self.z = rng.integers(1, 1 << 20, size=(n, 2), dtype=np.int64)
        self.exact = n >= 4000  # beyond, the projections could overflow int64: compare rows

    def of(self, normalised: NDArray[np.int64]) -> NDArray[np.int64]:
        if self.exact:
            return normalised
        return (normalised @ self.z) % PRIME


def _reduce(raw: NDArray[np.int64], basis: NDArray[np.int64], pivots: list[int]) -> NDArray[np.int64]:
    """0/1 rows reduced against a basis in reduced row echelon form. Float64 products are exact
    here (sums of at most n residues below 2^31 stay below 2^53) and use the fast matrix routines."""
    if not pivots:
        return raw
    product = raw[:, pivots].astype(np.float64) @ basis.astype(np.float64)
    return (raw - (product % PRIME).astype(np.int64)) % PRIME


def release(n: int, candidates: Sequence[int], primaries: Sequence[int], chunk: int = 512) -> set[int]:
    """The candidates (box masks over n cells, most important first) that can be shown together
    without any linear combination of them equalling one of the primaries (masks to protect).

    Invariant: no primary lies in the span of the accepted boxes. A candidate already in the span
    reveals nothing new and is accepted; one that adds a direction d is accepted unless some
    primary p, reduced against the span, is a multiple of d (then p = s + λd would be revealed).
    Arithmetic is exact, modulo a prime, on the reduced row echelon form of the span.
    """
    accepted: set[int] = set()
    if not candidates:
        return accepted
    if not primaries:
        return set(candidates)
    keys = _Keys(n)
    basis = np.zeros((0, n), dtype=np.int64)
    pivots: list[int] = []
    reduced_primaries = _rows(primaries, n)
    primary_keys = keys.of(_normalise(reduced_primaries))

    for start in range(0, len(candidates), chunk):
        block = list(candidates[start:start + chunk])
        raw = _reduce(_rows(block, n), basis, pivots)
        added: list[tuple[int, NDArray[np.int64]]] = []
        for i, mask in enumerate(block):
            row = raw[i]
            for j, direction in added:
                if row[j]:
                    row = (row - row[j] * direction) % PRIME
            if not row.any():
                accepted.add(mask)
                continue
            lead_at = int(np.flatnonzero(row)[0])
            direction = (row * pow(int(row[lead_at]), PRIME - 2, PRIME)) % PRIME
            key = keys.of(direction[None, :])[0]
            if (primary_keys == key).all(axis=1).any():
                continue  # would reveal a protected box
            accepted.add(mask)
            added.append((lead_at, direction))
            # Keep the basis in reduced row echelon form and the primaries reduced against it.
            if len(basis):
                hit = np.flatnonzero(basis[:, lead_at])
                if len(hit):
                    basis[hit] = (basis[hit] - basis[hit, lead_at][:, None] * direction) % PRIME
            basis = np.vstack([basis, direction])
            pivots.append(lead_at)
            hit = np.flatnonzero(reduced_primaries[:, lead_at])
            if len(hit):
                updated = (reduced_primaries[hit] - reduced_primaries[hit, lead_at][:, None] * direction) % PRIME
                if not updated.any(axis=1).all():
                    raise AssertionError("a protected figure entered the span")  # excluded by the key check
                reduced_primaries[hit] = updated
                primary_keys[hit] = keys.of(_normalise(updated))
    return accepted


def _tiers(months: Sequence[int], current: int | None) -> dict[tuple[int, int], int]:
    """Which boxes (first, last index into the months with data) the usual periods give:
    tier 0 the default period (the last 12 months), tier 1 the calendar years and all time.
    Single months (the monthly chart) are tier 2, any other range tier 3."""
    tiers: dict[tuple[int, int], int] = {}

    def box(first: int, last: int) -> tuple[int, int] | None:
        i, j = bisect.bisect_left(months, first), bisect.bisect_right(months, last) - 1
        return (i, j) if i <= j else None

    for year in sorted({m // 12 for m in months}, reverse=True):
        found = box(year * 12, year * 12 + 11)
        if found is not None:
            tiers.setdefault(found, 1)
    tiers.setdefault((0, len(months) - 1), 1)
    if current is not None:
        found = box(current - DEFAULT_MONTHS + 1, current)
        if found is not None:
            tiers[found] = 0
    return tiers


ExtraSpecs = Callable[[tuple[tuple[str, Any], ...]], list[tuple[str, Any] | None]]


def no_extra(extra: tuple[tuple[str, Any], ...]) -> list[tuple[str, Any] | None]:
    return [None]


class Table:
    """One record set (exchanges, matches, listings, firms) with the decision for every box.

    `time` is "range" for flows (any month range) or "prefix" for stocks (everything up to a month).
    `dominance` names the measure the dominance rule weighs (magnitudes: tonnes); None for counts.
    """

    def __init__(self, records: Iterable[Record], extra_specs: ExtraSpecs = no_extra, *,
                 time: str = "range", measures: Sequence[str] = (), families: bool = True,
                 current: int | None = None, dominance: str | None = None, rule: Dominance | None = None) -> None:
        self.time = time
        self.families = families
        self.measures = tuple(measures)
        self.dominance = dominance
        self.rule = rule or Dominance()
        cells: dict[tuple[Any, ...], int] = {}
        cell_firms: list[set[int]] = []
        cell_values: list[dict[str, float]] = []
        cell_records: list[Record] = []
        # Per cell, for the dominance rule: each firm's part and each pair's shared part.
        self.cell_parts: list[dict[int, float]] = []
        self.cell_shared: list[dict[tuple[int, int], float]] = []
        firm_index: dict[int, int] = {}
        for record in records:
            key = (record.month, record.family, record.commune, record.section, record.extra)
            index = cells.get(key)
            if index is None:
                index = cells[key] = len(cell_firms)
                cell_firms.append(set())
                cell_values.append(defaultdict(float))
                cell_records.append(record)
                self.cell_parts.append(defaultdict(float))
                self.cell_shared.append(defaultdict(float))
            cell_firms[index] |= record.firms
            for name, value in record.values.items():
                cell_values[index][name] += value
            for firm in record.firms:
                firm_index.setdefault(firm, len(firm_index))
            if dominance is not None:
                amount = record.values.get(dominance, 0.0)
                ordered_firms = sorted(record.firms)
                for i, firm in enumerate(ordered_firms):
                    self.cell_parts[index][firm] += amount
                    for other in ordered_firms[i + 1:]:
                        self.cell_shared[index][(firm, other)] += amount
        self.n = len(cell_firms)
        self.values = np.zeros((self.n, len(self.measures)), dtype=np.float64)
        for i, values in enumerate(cell_values):
            for j, name in enumerate(self.measures):
                self.values[i, j] = values.get(name, 0.0)
        self.firm_masks = [sum(1 << firm_index[f] for f in firms) for firms in cell_firms]
        # Which cells each spec holds, month by month.
        by_spec: dict[Spec, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for index, record in enumerate(cell_records):
            for spec in self._specs_of(record, extra_specs):
                by_spec[spec][record.month] |= 1 << index
        self.spec_months: dict[Spec, list[int]] = {}
        self.spec_masks: dict[Spec, list[int]] = {}
        box_priority: dict[int, tuple[Any, ...]] = {}
        for spec, months in by_spec.items():
            ordered = sorted(months)
            self.spec_months[spec] = ordered
            masks = [months[m] for m in ordered]
            self.spec_masks[spec] = masks
            # Most important first: fewer breakdown dimensions, then headline extras (attributable,
            # funnel stages, kinds) before crossing them with a dimension; then the periods people
            # ask for (see _tiers), longer and more recent first.
            dims = spec.constraints() - (spec.extra is not None)
            rank = (dims, spec.extra is not None)
            tiers = _tiers(ordered, current)
            starts = range(len(ordered)) if time == "range" else range(1)
            for i in starts:
                content = 0
                for j in range(i, len(ordered)):
                    content |= masks[j]
                    tier = tiers.get((i, j), 2 if i == j else 3)
                    priority = (*rank, tier, -(ordered[j] - ordered[i]), -ordered[j], _spec_rank(spec))
                    if content not in box_priority or priority < box_priority[content]:
                        box_priority[content] = priority
        # Every box the rule makes confidential (fewer than 3 firms, or dominated) is one to protect;
        # the release then keeps back, as complementary suppressions, the boxes that would give one
        # of them away by subtraction.
        self.firm_counts: dict[int, int] = {}
        self.confidential: dict[int, str] = {}
        candidates: list[int] = []
        primaries: list[int] = []
        for content in box_priority:
            reason = self._confidentiality(content)
            if reason is None:
                candidates.append(content)
            else:
                self.confidential[content] = reason
                primaries.append(content)
        candidates.sort(key=lambda c: (box_priority[c], c))
        self.shown = release(self.n, candidates, primaries)

    def _confidentiality(self, content: int) -> str | None:
        count = self.firm_counts.get(content)
        if count is None:
            count = self.firm_counts[content] = self._firm_count(content)
        if self.dominance is None or count < MIN_FIRMS:
            return confidentiality(count)
        parts: dict[int, float] = defaultdict(float)
        shared: dict[tuple[int, int], float] = defaultdict(float)
        for i in _bits(content):
            for firm, amount in self.cell_parts[i].items():
                parts[firm] += amount
            for pair, amount in self.cell_shared[i].items():
                shared[pair] += amount
        return confidentiality(count, self.total(content, self.dominance), parts, shared, self.rule)

    def _specs_of(self, record: Record, extra_specs: ExtraSpecs) -> Iterable[Spec]:
        """Every box that holds the record and that some view shows (no view crosses an EWC-Stat
        category with an extra dimension, nor firms with families)."""
        options = ((record.family, None), (None, record.category), (None, None)) if self.families else ((None, None),)
        for family, category in options:
            for commune in (record.commune, None):
                for section in (record.section, None):
                    for extra in extra_specs(record.extra):
                        if category is None or extra is None:
                            yield Spec(family, category, commune, section, extra)

    def _firm_count(self, content: int) -> int:
        firms = 0
        for i in _bits(content):
            firms |= self.firm_masks[i]
        return firms.bit_count()

    def content(self, spec: Spec, first: int, last: int) -> int:
        """The cells of a box: the spec's cells in months first..last (clipped to the data)."""
        if spec.family is not None and spec.category is not None:
            return 0  # a family and a category: resolved by the caller
        months = self.spec_months.get(spec)
        if not months:
            return 0
        i = 0 if self.time == "prefix" else bisect.bisect_left(months, first)
        j = bisect.bisect_right(months, last) - 1
        if i > j:
            return 0
        content = 0
        for mask in self.spec_masks[spec][i:j + 1]:
            content |= mask
        return content

    def status(self, content: int) -> str:
        if not content:
            return "empty"
        if content in self.shown:
            return "shown"
        if content not in self.confidential and content not in self.firm_counts:
            reason = self._confidentiality(content)
            if reason is not None:
                self.confidential[content] = reason
        return self.confidential.get(content, "secondary")

    def total(self, content: int, measure: str) -> float:
        if not content:
            return 0.0
        return float(self.values[_bits(content), self.measures.index(measure)].sum())

    def figure(self, spec: Spec, first: int, last: int, measure: str) -> Figure:
        content = self.content(spec, first, last)
        status = self.status(content)
        if status == "empty":
            return EMPTY
        if status != "shown":
            return Figure(None, status)
        return Figure(self.total(content, measure), status)

    def figures(self, spec: Spec, first: int, last: int, measures: Sequence[str]) -> dict[str, Figure]:
        content = self.content(spec, first, last)
        status = self.status(content)
        if status == "empty":
            return {m: EMPTY for m in measures}
        if status != "shown":
            return {m: Figure(None, status) for m in measures}
        return {m: Figure(self.total(content, m), status) for m in measures}


# --- reference data: NAF sections, emission factors, disposal costs -----------------------------------

# NAF rév. 2 sections from the two-digit division (INSEE).
_SECTION_RANGES = [
    ("A", 1, 3), ("B", 5, 9), ("C", 10, 33), ("D", 35, 35), ("E", 36, 39), ("F", 41, 43), ("G", 45, 47),
    ("H", 49, 53), ("I", 55, 56), ("J", 58, 63), ("K", 64, 66), ("L", 68, 68), ("M", 69, 75), ("N", 77, 82),
    ("O", 84, 84), ("P", 85, 85), ("Q", 86, 88), ("R", 90, 93), ("S", 94, 96), ("T", 97, 98), ("U", 99, 99),
]
SECTION_LABELS = {
    "A": ("Agriculture, sylviculture et pêche", "Agriculture, forestry and fishing"),
    "B": ("Industries extractives", "Mining and quarrying"),
    "C": ("Industrie manufacturière", "Manufacturing"),
    "D": ("Électricité, gaz, vapeur et air conditionné", "Electricity, gas, steam and air conditioning"),
    "E": ("Eau, assainissement, gestion des déchets et dépollution", "Water, sewerage, waste and remediation"),
    "F": ("Construction", "Construction"),
    "G": ("Commerce ; réparation d'automobiles et de motocycles", "Trade; repair of motor vehicles"),
    "H": ("Transports et entreposage", "Transportation and storage"),
    "I": ("Hébergement et restauration", "Accommodation and food service"),
    "J": ("Information et communication", "Information and communication"),
    "K": ("Activités financières et d'assurance", "Financial and insurance activities"),
    "L": ("Activités immobilières", "Real estate activities"),
    "M": ("Activités spécialisées, scientifiques et techniques", "Professional, scientific and technical"),
    "N": ("Activités de services administratifs et de soutien", "Administrative and support services"),
    "O": ("Administration publique", "Public administration"),
    "P": ("Enseignement", "Education"),
    "Q": ("Santé humaine et action sociale", "Human health and social work"),
    "R": ("Arts, spectacles et activités récréatives", "Arts, entertainment and recreation"),
    "S": ("Autres activités de services", "Other service activities"),
    "T": ("Activités des ménages en tant qu'employeurs", "Households as employers"),
    "U": ("Activités extra-territoriales", "Extraterritorial organisations"),
    "?": ("Activité non renseignée", "Activity not given"),
}
UNKNOWN = "?"
OUTSIDE = "outside"  # a commune outside the CCMA
ROAD_FACTOR = 1.3  # road distance over crow-fly distance, a usual detour index


def naf_section(naf_code: str | None) -> str:
    """The NAF section letter of a code such as "16.10A" (its division is 16: section C)."""
    digits = "".join(ch for ch in (naf_code or "")[:2] if ch.isdigit())
    if len(digits) != 2:
        return UNKNOWN
    division = int(digits)
    for letter, low, high in _SECTION_RANGES:
        if low <= division <= high:
            return letter
    return UNKNOWN


@dataclass(frozen=True)
class Factor:
    value: float
    unit: str
    source: str
    source_url: str
    year: str
    source_family: str
    source_kind: str


@dataclass(frozen=True)
class FamilyFactors:
    family: str
    route: str  # landfill | composting
    disposal: Factor
    virgin: Factor | None = None
    secondary: Factor | None = None

    @property
    def substitution(self) -> float:
        """kgCO2e per tonne of virgin production replaced; never negative (see seed/README.md)."""
        if self.virgin is None or self.secondary is None:
            return 0.0
        return max(0.0, self.virgin.value - self.secondary.value)

    @property
    def per_tonne(self) -> float:
        return self.disposal.value + self.substitution


@dataclass(frozen=True)
class Method:
    families: dict[str, FamilyFactors]
    transport: Factor
    tgap: dict[int, tuple[float, str, str]]  # year → (€/t, item, source)
    landfill_fee: float  # €/t without TGAP
    landfill_fee_source: tuple[str, str]
    composting_cost: float
    composting_source: tuple[str, str]
    road_factor: float = ROAD_FACTOR

    def tgap_for(self, year: int) -> float:
        years = sorted(self.tgap)
        year = min(max(year, years[0]), years[-1])
        return self.tgap[year][0]

    def landfill_cost(self, year: int) -> float:
        return self.landfill_fee + self.tgap_for(year)


def _seed_dir() -> Path:
    from ..matching import nomenclature

    return nomenclature.seed_dir()


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@lru_cache(maxsize=4)
def _method(seed: Path) -> Method:
    by_family: dict[str, dict[str, Any]] = defaultdict(dict)
    transport: Factor | None = None
    for row in _read_csv(seed / "emission_factors.csv"):
        factor = Factor(float(row["value"]), row["unit"], row["source"], row["source_url"], row["year"],
                        row["source_family"], row["source_kind"])
        if row["component"] == "transport":
            transport = factor
            continue
        by_family[row["family"]][row["component"]] = factor
        if row["route"]:
            by_family[row["family"]]["route"] = row["route"]
    families = {
        slug: FamilyFactors(slug, parts["route"], parts["disposal"], parts.get("virgin"), parts.get("secondary"))
        for slug, parts in by_family.items()
    }
    tgap: dict[int, tuple[float, str, str]] = {}
    fee = compost = 0.0
    fee_source = compost_source = ("", "")
    for row in _read_csv(seed / "disposal_costs.csv"):
        value = float(row["value_eur_per_t"])
        if row["use"] == "tgap_landfill":
            tgap[int(row["year"])] = (value, row["item"], row["source_url"])
        elif row["use"] == "landfill_cost_incl_tgap":
            fee = value - tgap.get(int(row["year"]), (0.0, "", ""))[0]
            fee_source = (row["item"], row["source_url"])
        elif row["use"] == "composting_cost":
            compost, compost_source = value, (row["item"], row["source_url"])
    if transport is None or not tgap:
        raise RuntimeError("seed/emission_factors.csv or seed/disposal_costs.csv is incomplete")
    return Method(families, transport, tgap, fee, fee_source, compost, compost_source)


def method() -> Method:
    """The CO2e and cost method, from the seed files the service ships."""
    return _method(_seed_dir())


# --- records from the database ------------------------------------------------------------------------

LEVELS = ("found", "interest", "accepted", "exchanged", "recurring")
RECURRING_MONTHS = 3  # exchanges in this many different months make a recurring flow


@dataclass(frozen=True)
class Places:
    """What a record needs about firms, sites and families."""

    firm_section: dict[int, str]
    firm_commune: dict[int, str]
    firm_created: dict[int, int]
    site_commune: dict[int, str]
    site_point: dict[int, tuple[float, float]]
    category_of: dict[str, str]


def _places(session: Any) -> Places:
    from sqlalchemy import select

    from ..models import Commune, Firm, MaterialFamily, Site

    ccma = {insee for (insee,) in session.execute(select(Commune.insee).where(Commune.ccma.is_(True)))}
    site_commune: dict[int, str] = {}
    site_point: dict[int, tuple[float, float]] = {}
    firm_commune: dict[int, str] = {}
    for site_id, firm_id, insee, lat, lon, is_main in session.execute(
        select(Site.id, Site.firm_id, Site.commune_insee, Site.lat, Site.lon, Site.is_main).order_by(Site.id)
    ):
        commune = insee if insee in ccma else OUTSIDE
        site_commune[site_id] = commune
        site_point[site_id] = (lat, lon)
        if is_main or firm_id not in firm_commune:
            firm_commune[firm_id] = commune
    firm_section: dict[int, str] = {}
    firm_created: dict[int, int] = {}
    for firm_id, naf, created in session.execute(select(Firm.id, Firm.naf_code, Firm.created_at)):
        firm_section[firm_id] = naf_section(naf)
        firm_created[firm_id] = month_index(created.date() if isinstance(created, datetime) else created)
    category_of = {slug: code for slug, code in session.execute(select(MaterialFamily.slug,
                                                                       MaterialFamily.ewc_stat_code))}
    category_of[UNKNOWN] = UNKNOWN
    return Places(firm_section, firm_commune, firm_created, site_commune, site_point, category_of)


def _day(value: datetime | date) -> date:
    return value.astimezone(UTC).date() if isinstance(value, datetime) else value


def _haversine(a: tuple[float, float], b: tuple[float, float]) -> float:
    from .visibility import haversine_km

    return haversine_km(a[0], a[1], b[0], b[1])


def match_level(*, offer_decision: str, need_decision: str, status: str, follow_up: str,
                introduced: bool, exchange_months: int) -> int:
    """How far a match got: 0 found, 1 interest, 2 accepted, 3 exchanged, 4 recurring.

    The strongest evidence wins (a facilitator's follow-up counts as much as the firms' clicks),
    so each stage contains the next and the funnel never widens.
    """
    level = 0
    if introduced or {offer_decision, need_decision} & {"interested", "accepted"} or follow_up in (
            "contacted", "trial", "exchanged", "recurring"):
        level = 1
    if status == "accepted" or follow_up in ("trial", "exchanged", "recurring"):
        level = 2
    if exchange_months > 0 or follow_up in ("exchanged", "recurring"):
        level = 3
    if exchange_months >= RECURRING_MONTHS or follow_up == "recurring":
        level = 4
    return level


@dataclass
class Data:
    """Every record set of the statistics, read once."""

    firms: list[Record] = field(default_factory=list)
    listings: list[Record] = field(default_factory=list)
    offered: list[Record] = field(default_factory=list)
    matches: list[Record] = field(default_factory=list)
    matched: list[Record] = field(default_factory=list)
    exchanges: list[Record] = field(default_factory=list)
    exchanged: list[Record] = field(default_factory=list)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in ("firms", "listings", "offered", "matches", "matched", "exchanges", "exchanged"):
            digest.update(name.encode())
            for record in getattr(self, name):
                digest.update(repr((record.month, record.family, record.commune, record.section,
                                    sorted(record.firms), sorted(record.values.items()), record.extra)).encode())
        return digest.hexdigest()


def attributable_exchanges(rows: Sequence[tuple[int, int, int, str, date, date]]) -> set[int]:
    """Which exchanges the service brought about.

    Rows are (exchange id, firm a, firm b, family, exchange date, date the match was found). An
    exchange is attributable when it is dated on or after the day the service found its match and
    the two firms had recorded no exchange of that family (in either direction) before that day:
    a flow that existed before the service is not the service's doing.
    """
    earliest: dict[tuple[frozenset[int], str], date] = {}
    for _, a, b, family, when, _found in rows:
        key = (frozenset((a, b)), family)
        if key not in earliest or when < earliest[key]:
            earliest[key] = when
    return {
        exchange_id
        for exchange_id, a, b, family, when, found in rows
        if when >= found and earliest[(frozenset((a, b)), family)] >= found
    }


def read(session: Any) -> Data:
    """Records of every kind, placed on the axes (month, family, commune, section)."""
    from sqlalchemy import select
    from sqlalchemy.orm import aliased

    from ..models import Exchange, Listing, ListingStatus, Match

    places = _places(session)
    m = method()
    data = Data()
    for firm_id in sorted(places.firm_section):
        data.firms.append(Record(places.firm_created[firm_id], "", "", places.firm_commune.get(firm_id, OUTSIDE),
                                 places.firm_section[firm_id], frozenset({firm_id}), {"count": 1.0}))

    listing_rows = session.execute(
        select(Listing.id, Listing.firm_id, Listing.site_id, Listing.kind, Listing.material_family,
               Listing.annual_tonnes, Listing.published_at, Listing.status)
        .where(Listing.published_at.is_not(None), Listing.status != ListingStatus.draft)
    ).all()
    for _id, firm_id, site_id, kind, family, annual, published, _status in listing_rows:
        family = family or UNKNOWN
        common: dict[str, Any] = dict(month=month_index(_day(published)), family=family,
                      category=places.category_of.get(family, UNKNOWN),
                      commune=places.site_commune.get(site_id, OUTSIDE),
                      section=places.firm_section.get(firm_id, UNKNOWN), firms=frozenset({firm_id}))
        data.listings.append(Record(**common, values={"count": 1.0}, extra=(("kind", kind.value),)))
        if kind.value == "offer" and annual is not None:
            data.offered.append(Record(**common, values={"tonnes": float(annual)}))

    offer, need = aliased(Listing), aliased(Listing)
    exchange_rows = session.execute(
        select(Exchange.id, Exchange.match_id, Exchange.tonnes, Exchange.date)
    ).all()
    months_by_match: dict[int, set[int]] = defaultdict(set)
    for _eid, match_id, _t, when in exchange_rows:
        months_by_match[match_id].add(month_index(when))
    match_rows = session.execute(
        select(Match.id, Match.created_at, Match.offer_decision, Match.need_decision, Match.status,
               Match.follow_up, Match.introduced_at, Match.distance_km,
               offer.firm_id, offer.site_id, offer.material_family, offer.annual_tonnes,
               need.firm_id, need.site_id, need.material_family, need.annual_tonnes)
        .join(offer, offer.id == Match.offer_id).join(need, need.id == Match.need_id)
    ).all()
    matches: dict[int, Any] = {}
    for row in match_rows:
        (match_id, created, offer_decision, need_decision, status, follow_up, introduced, distance,
         offer_firm, offer_site, offer_family, offer_tonnes, need_firm, need_site, need_family, need_tonnes) = row
        family = offer_family or need_family or UNKNOWN
        firms = frozenset({offer_firm, need_firm})
        if distance is None and offer_site in places.site_point and need_site in places.site_point:
            distance = _haversine(places.site_point[offer_site], places.site_point[need_site])
        matches[match_id] = (family, firms, offer_firm, need_firm, offer_site, distance, _day(created))
        level = match_level(offer_decision=offer_decision.value, need_decision=need_decision.value,
                            status=status.value, follow_up=follow_up.value, introduced=introduced is not None,
                            exchange_months=len(months_by_match.get(match_id, ())))
        common = dict(month=month_index(_day(created)), family=family,
                      category=places.category_of.get(family, UNKNOWN),
                      commune=places.site_commune.get(offer_site, OUTSIDE),
                      section=places.firm_section.get(offer_firm, UNKNOWN), firms=firms)
        data.matches.append(Record(**common, values={"count": 1.0},
                                   extra=(("level", level), ("status", status.value))))
        known = [t for t in (offer_tonnes, need_tonnes) if t is not None]
        if known:
            data.matched.append(Record(**common, values={"tonnes": float(min(known))}))

    attribution_rows = [
        (eid, matches[match_id][2], matches[match_id][3], matches[match_id][0], when, matches[match_id][6])
        for eid, match_id, _t, when in exchange_rows if match_id in matches
    ]
    attributable = attributable_exchanges(attribution_rows)
    for eid, match_id, tonnes, when in exchange_rows:
        if match_id not in matches:
            continue
        family, firms, offer_firm, _need_firm, offer_site, distance, _found = matches[match_id]
        common = dict(month=month_index(when), family=family,
                      category=places.category_of.get(family, UNKNOWN),
                      commune=places.site_commune.get(offer_site, OUTSIDE),
                      section=places.firm_section.get(offer_firm, UNKNOWN), firms=firms)
        data.exchanges.append(Record(**common, values={"count": 1.0}))
        if tonnes is None:
            continue
        data.exchanged.append(Record(**common, values=exchange_values(m, family, float(tonnes), distance),
                                     extra=(("attr", eid in attributable),)))
    return data


def exchange_values(m: Method, family: str, tonnes: float, distance_km: float | None) -> dict[str, float]:
    """The measures of one exchange: tonnes, t·km, CO2e components (tCO2e), tonnes kept from landfill
    or composting. Families without factors count their tonnes only."""
    road = (distance_km or 0.0) * m.road_factor
    values = {"tonnes": tonnes, "tkm": tonnes * road, "distance_t": tonnes if distance_km is not None else 0.0}
    factors = m.families.get(family)
    if factors is None:
        return values
    transport = tonnes * road * m.transport.value / 1000
    values.update({
        "co2_disposal": tonnes * factors.disposal.value / 1000,
        "co2_substitution": tonnes * factors.substitution / 1000,
        "co2_transport": transport,
        "co2": tonnes * factors.per_tonne / 1000 - transport,
        "landfill": tonnes if factors.route == "landfill" else 0.0,
        "compost": tonnes if factors.route == "composting" else 0.0,
    })
    return values


EXCHANGED_MEASURES = ("tonnes", "tkm", "distance_t", "co2_disposal", "co2_substitution", "co2_transport", "co2",
                      "landfill", "compost")


def _kind_specs(extra: tuple[tuple[str, Any], ...]) -> list[tuple[str, Any] | None]:
    return [None, extra[0]]


def _match_specs(extra: tuple[tuple[str, Any], ...]) -> list[tuple[str, Any] | None]:
    values = dict(extra)
    return [None, ("status", values["status"])] + [("level", k) for k in range(1, int(values["level"]) + 1)]


def _attr_specs(extra: tuple[tuple[str, Any], ...]) -> list[tuple[str, Any] | None]:
    return [None, ("attr", True)] if dict(extra).get("attr") else [None]


@dataclass
class Tables:
    firms: Table
    listings: Table
    offered: Table
    matches: Table
    matched: Table
    exchanges: Table
    exchanged: Table
    months: tuple[int, int] | None  # first and last month with any data
    rule: Dominance = field(default_factory=Dominance)  # the dominance rule the tables were released under


def build(data: Data, current: int | None = None, rule: Dominance | None = None) -> Tables:
    """Release every table; `current` (this month) puts the default period first in line.

    The dominance rule weighs the tonnes (offered, matched, exchanged; the exchanged table's CO2e,
    landfill and costs are shown exactly when its tonnes are). Counts of firms, listings, matches
    and exchanges are frequencies: the rule of 3 firms protects them."""
    all_months = [r.month for name in ("listings", "matches", "exchanges") for r in getattr(data, name)]
    rule = rule or Dominance()
    return Tables(
        firms=Table(data.firms, time="prefix", measures=["count"], families=False, current=current),
        listings=Table(data.listings, _kind_specs, measures=["count"], current=current),
        offered=Table(data.offered, measures=["tonnes"], current=current, dominance="tonnes", rule=rule),
        matches=Table(data.matches, _match_specs, measures=["count"], current=current),
        matched=Table(data.matched, measures=["tonnes"], current=current, dominance="tonnes", rule=rule),
        exchanges=Table(data.exchanges, measures=["count"], current=current),
        exchanged=Table(data.exchanged, _attr_specs, measures=EXCHANGED_MEASURES, current=current,
                        dominance="tonnes", rule=rule),
        months=(min(all_months), max(all_months)) if all_months else None,
        rule=rule,
    )


def dominance_rule() -> Dominance:
    """The thresholds of the dominance rule: settings STATS_DOMINANCE_ONE and STATS_DOMINANCE_TWO
    (shares between 0 and 1) when an application is running, else the defaults."""
    from flask import current_app, has_app_context

    if not has_app_context():
        return Dominance()
    config = current_app.config
    return Dominance(float(config.get("STATS_DOMINANCE_ONE", DOMINANCE_ONE)),
                     float(config.get("STATS_DOMINANCE_TWO", DOMINANCE_TWO)))


_cache: dict[str, tuple[str, Tables]] = {}
_cache_lock = threading.Lock()


def tables(session: Any, today: date | None = None) -> Tables:
    """The released tables for the database's current content; computed once per content and month."""
    data = read(session)
    current = month_index(today or datetime.now(UTC).date())
    rule = dominance_rule()
    fingerprint = f"{data.fingerprint()}:{current}:{rule.one}:{rule.two}"
    key = str(session.get_bind().url)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
    built = build(data, current, rule)
    with _cache_lock:
        _cache[key] = (fingerprint, built)
    return built


# --- views: a period and filters -----------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole months, first to last (inclusive): periods are snapped to months so that no two
    periods differ by a few days, which would single out the exchanges of those days."""

    first: int
    last: int

    @property
    def start(self) -> date:
        return month_start(self.first)

    @property
    def end(self) -> date:
        return month_end(self.last)

    @property
    def months(self) -> list[int]:
        return list(range(self.first, self.last + 1))


@dataclass(frozen=True)
class Filters:
    family: str | None = None
    commune: str | None = None  # an INSEE code of the CCMA, or OUTSIDE
    section: str | None = None

    def active(self) -> bool:
        return any((self.family, self.commune, self.section))

    def as_args(self) -> dict[str, str]:
        return {k: v for k, v in (("family", self.family), ("commune", self.commune),
                                  ("section", self.section)) if v}


MAX_MONTHS = 12 * 10


def default_period(today: date) -> Period:
    last = month_index(today)
    return Period(last - DEFAULT_MONTHS + 1, last)


def parse_period(start: object, end: object, today: date) -> Period:
    """A period from two dates (YYYY-MM-DD or YYYY-MM), either may be missing; snapped to months."""
    from flask_babel import lazy_gettext as _l

    from . import validation as v

    errors = v.Collector()

    def month_of(value: object, field_name: str) -> int | None:
        text = str(value or "").strip()
        if not text:
            return None
        if len(text) == 7:
            text += "-01"
        day = errors.check(field_name, v.iso_date, text)
        if isinstance(day, date) and not date(EPOCH_YEAR, 1, 1) <= day <= date(today.year + 1, 12, 31):
            errors.add(field_name, _l("This date is outside the statistics' range."))
            return None
        return month_index(day) if isinstance(day, date) else None

    first, last = month_of(start, "from"), month_of(end, "to")
    errors.raise_if_any()
    default = default_period(today)
    if first is None and last is None:
        return default
    if last is None:
        last = max(first or default.last, min(default.last, (first or 0) + DEFAULT_MONTHS - 1))
    if first is None:
        first = last - DEFAULT_MONTHS + 1
    if first > last:
        errors.add("to", _l("The end of the period comes before its start."))
    elif last - first + 1 > MAX_MONTHS:
        errors.add("from", _l("A period covers at most %(n)s years.", n=MAX_MONTHS // 12))
    errors.raise_if_any()
    return Period(first, last)


def parse_filters(session: Any, family: object = None, commune: object = None, section: object = None) -> Filters:
    from flask_babel import lazy_gettext as _l
    from sqlalchemy import select

    from ..models import Commune, MaterialFamily
    from . import validation as v

    errors = v.Collector()
    clean_family = str(family or "").strip() or None
    if clean_family and clean_family != UNKNOWN and session.get(MaterialFamily, clean_family) is None:
        errors.add("family", _l("Unknown material family."))
    clean_commune = str(commune or "").strip() or None
    if clean_commune and clean_commune != OUTSIDE and clean_commune not in {
            insee for (insee,) in session.execute(select(Commune.insee).where(Commune.ccma.is_(True)))}:
        errors.add("commune", _l("Not one of the communes of the CCMA."))
    clean_section = str(section or "").strip().upper() or None
    if clean_section and clean_section not in SECTION_LABELS:
        errors.add("section", _l("Unknown NAF section (a letter from A to U)."))
    errors.raise_if_any()
    return Filters(clean_family, clean_commune, clean_section)


NA = Figure(None, "na")


@dataclass
class Breakdown:
    """One row of a breakdown table: its key and a figure per measure."""

    key: str
    figures: dict[str, Figure]

    def __getitem__(self, measure: str) -> Figure:
        return self.figures[measure]


@dataclass
class Stage:
    key: str
    figure: Figure
    rate: Figure | None  # share of the previous stage that got this far


@dataclass
class Dashboard:
    period: Period
    filters: Filters
    kpis: dict[str, Figure]
    left_out: int  # families whose CO2e, landfill and costs are not in the totals (hidden rows)
    funnel: list[Stage]
    statuses: dict[str, Figure]
    families: list[Breakdown]
    categories: list[Breakdown]
    communes: list[Breakdown]
    sections: list[Breakdown]
    months: list[Breakdown]
    method: Method
    cost_year: int
    data_months: tuple[int, int] | None
    dominance: Dominance = field(default_factory=Dominance)


def _narrow(filters: Filters, tables_: Tables, *, family: str | None = None, category: str | None = None,
            commune: str | None = None, section: str | None = None,
            extra: tuple[str, Any] | None = None, category_of: Mapping[str, str] | None = None) -> Spec | None:
    """The spec of the filtered view narrowed to one more value; None when they contradict."""
    f = filters
    if family is not None and f.family is not None and family != f.family:
        return None
    if commune is not None and f.commune is not None and commune != f.commune:
        return None
    if section is not None and f.section is not None and section != f.section:
        return None
    fam = family or f.family
    if category is not None and fam is not None:
        if (category_of or {}).get(fam) != category:
            return None
        category = None
    return Spec(fam, category, commune or f.commune, section or f.section, extra)


def _figure(table: Table, spec: Spec | None, period: Period, measure: str) -> Figure:
    if spec is None:
        return EMPTY
    return table.figure(spec, period.first, period.last, measure)


def _derived(table: Table, spec: Spec | None, period: Period, measure: str, base: Figure,
             transform: Callable[[float], float] | None = None) -> Figure:
    """A figure computed from the same records as `base`: shown exactly when `base` is."""
    if spec is None or base.status == "empty":
        return EMPTY
    if base.value is None:
        return Figure(None, base.status)
    value = table.total(table.content(spec, period.first, period.last), measure)
    return Figure(transform(value) if transform else value, "shown")


def _ratio(numerator: Figure, denominator: Figure) -> Figure | None:
    if numerator.status == "empty" and denominator.status == "empty":
        return None
    if numerator.value is None or denominator.value is None:
        status = numerator.status if numerator.value is None else denominator.status
        return Figure(None, status)
    if not denominator.value:
        return None
    return Figure(numerator.value / denominator.value, "shown")


def sort_rows(rows: list[Breakdown], measure: str) -> list[Breakdown]:
    """Shown rows by value, then hidden rows by key, then empty ones: hidden values never steer
    the order (an order would rank them)."""
    def key(row: Breakdown) -> tuple[int, float, str]:
        figure = row[measure]
        if figure.status == "shown" and figure.value is not None:
            return (0, -figure.value, row.key)
        if figure.status == "empty":
            return (2, 0.0, row.key)
        return (1, 0.0, row.key)

    return sorted(rows, key=key)


def dashboard(session: Any, period: Period, filters: Filters, today: date | None = None,
              precomputed: Tables | None = None) -> Dashboard:
    """Every figure of the statistics page for a period and filters, each shown or withheld.
    `precomputed` skips reading the database again (tests asking for thousands of views)."""
    from sqlalchemy import select

    from ..models import Commune, MaterialFamily

    t = precomputed or tables(session, today)
    m = method()
    category_of = {slug: code for slug, code in session.execute(select(MaterialFamily.slug,
                                                                       MaterialFamily.ewc_stat_code))}
    category_of[UNKNOWN] = UNKNOWN
    cost_year = period.end.year
    landfill_cost, compost_cost = m.landfill_cost(cost_year), m.composting_cost

    def narrow(**kwargs: Any) -> Spec | None:
        return _narrow(filters, t, category_of=category_of, **kwargs)

    base = narrow()
    kpis: dict[str, Figure] = {
        "firms": NA if filters.family else (
            EMPTY if base is None else t.firms.figure(base, period.first, period.last, "count")),
        "listings": _figure(t.listings, base, period, "count"),
        "offers": _figure(t.listings, narrow(extra=("kind", "offer")), period, "count"),
        "needs": _figure(t.listings, narrow(extra=("kind", "need")), period, "count"),
        "offered": _figure(t.offered, base, period, "tonnes"),
        "matches": _figure(t.matches, base, period, "count"),
        "matched": _figure(t.matched, base, period, "tonnes"),
        "exchanges": _figure(t.exchanges, base, period, "count"),
        "exchanged": _figure(t.exchanged, base, period, "tonnes"),
        "attributable": _figure(t.exchanged, narrow(extra=("attr", True)), period, "tonnes"),
    }
    kpis["distance"] = _derived(t.exchanged, base, period, "tkm", kpis["exchanged"])
    if kpis["distance"].value is not None:
        weight = t.exchanged.total(t.exchanged.content(base, period.first, period.last), "distance_t") \
            if base is not None else 0.0
        kpis["distance"] = Figure(kpis["distance"].value / weight / m.road_factor, "shown") if weight else EMPTY

    funnel: list[Stage] = []
    previous: Figure | None = None
    for level, key in enumerate(LEVELS):
        spec = base if level == 0 else narrow(extra=("level", level))
        figure = _figure(t.matches, spec, period, "count")
        funnel.append(Stage(key, figure, _ratio(figure, previous) if previous is not None else None))
        previous = figure
    statuses = {
        status: _figure(t.matches, narrow(extra=("status", status)), period, "count")
        for status in ("proposed", "interested", "accepted", "declined", "stale")
    }

    # Families: every measure of the row; the derived ones only where its exchanged tonnes are shown.
    family_keys = sorted({
        spec.family for table in (t.offered, t.matched, t.exchanged) for spec in table.spec_months
        if spec.family is not None and spec.commune is None and spec.section is None and spec.extra is None
    })
    families: list[Breakdown] = []
    sums: dict[str, float] = defaultdict(float)
    left_out = 0
    for slug in family_keys:
        spec = narrow(family=slug)
        attr_spec = narrow(family=slug, extra=("attr", True))
        exchanged = _figure(t.exchanged, spec, period, "tonnes")
        attributable = _figure(t.exchanged, attr_spec, period, "tonnes")
        row = {
            "offered": _figure(t.offered, spec, period, "tonnes"),
            "matched": _figure(t.matched, spec, period, "tonnes"),
            "exchanged": exchanged,
            "attributable": attributable,
        }
        for measure in ("co2", "co2_disposal", "co2_substitution", "co2_transport", "landfill", "compost"):
            row[measure] = _derived(t.exchanged, spec, period, measure, exchanged)
        row["co2_attributable"] = _derived(t.exchanged, attr_spec, period, "co2", attributable)
        landfill, compost = row["landfill"], row["compost"]
        if landfill.status == "empty":
            row["cost"] = EMPTY
        elif landfill.value is None:
            row["cost"] = Figure(None, landfill.status)
        else:
            row["cost"] = Figure((landfill.value or 0.0) * landfill_cost + (compost.value or 0.0) * compost_cost,
                                 "shown")
        if all(f.status == "empty" for f in row.values()):
            continue
        if exchanged.withheld:
            left_out += 1
        for measure in ("co2", "co2_disposal", "co2_substitution", "co2_transport", "landfill", "compost", "cost"):
            if row[measure].value is not None:
                sums[measure] += row[measure].value or 0.0
        if row["co2_attributable"].value is not None:
            sums["co2_attributable"] += row["co2_attributable"].value or 0.0
        families.append(Breakdown(slug, row))
    families = sort_rows(families, "exchanged")

    def summed(measure: str) -> Figure:
        rows = [r for r in families if r["exchanged"].status != "empty"]
        if not rows:
            return EMPTY
        if not any(r["exchanged"].status == "shown" for r in rows):
            reasons = {r["exchanged"].status for r in rows}
            return Figure(None, reasons.pop() if len(reasons) == 1 else "secondary")
        return Figure(sums[measure], "shown")

    for measure in ("co2", "co2_disposal", "co2_substitution", "co2_transport", "landfill", "compost", "cost",
                    "co2_attributable"):
        kpis[measure] = summed(measure)

    categories = []
    for code in sorted({category_of.get(slug, UNKNOWN) for slug in family_keys}):
        spec = narrow(category=code)
        row = {
            "offered": _figure(t.offered, spec, period, "tonnes"),
            "matched": _figure(t.matched, spec, period, "tonnes"),
            "exchanged": _figure(t.exchanged, spec, period, "tonnes"),
        }
        if not all(f.status == "empty" for f in row.values()):
            categories.append(Breakdown(code, row))
    categories = sort_rows(categories, "exchanged")

    communes = []
    ccma = [insee for (insee,) in session.execute(select(Commune.insee).where(Commune.ccma.is_(True))
                                                  .order_by(Commune.name))]
    for insee in [*ccma, OUTSIDE]:
        spec = narrow(commune=insee)
        row = {
            "firms": NA if filters.family else (
                EMPTY if spec is None else t.firms.figure(spec, period.first, period.last, "count")),
            "listings": _figure(t.listings, spec, period, "count"),
            "offered": _figure(t.offered, spec, period, "tonnes"),
            "exchanges": _figure(t.exchanges, spec, period, "count"),
            "exchanged": _figure(t.exchanged, spec, period, "tonnes"),
        }
        if insee == OUTSIDE and all(f.status in ("empty", "na") for f in row.values()):
            continue
        communes.append(Breakdown(insee, row))

    sections = []
    for letter in SECTION_LABELS:
        spec = narrow(section=letter)
        row = {
            "firms": NA if filters.family else (
                EMPTY if spec is None else t.firms.figure(spec, period.first, period.last, "count")),
            "listings": _figure(t.listings, spec, period, "count"),
            "offered": _figure(t.offered, spec, period, "tonnes"),
            "exchanged": _figure(t.exchanged, spec, period, "tonnes"),
        }
        if not all(f.status in ("empty", "na") for f in row.values()):
            sections.append(Breakdown(letter, row))
    sections = sort_rows(sections, "exchanged")

    months = []
    for month in period.months:
        one = Period(month, month)
        months.append(Breakdown(month_label(month), {
            "listings": _figure(t.listings, base, one, "count"),
            "matches": _figure(t.matches, base, one, "count"),
            "exchanges": _figure(t.exchanges, base, one, "count"),
            "exchanged": _figure(t.exchanged, base, one, "tonnes"),
        }))

    return Dashboard(period, filters, kpis, left_out, funnel, statuses, families, categories, communes, sections,
                     months, m, cost_year, t.months, t.rule)
