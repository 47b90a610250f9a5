"""Disclosure control, attacked from outside.

For many filter combinations (period × material family × commune × NAF section), every figure the
statistics show is mapped to the set of records it adds up, using this file's own reading of the
database (not the service's). Then, per kind of record:

- every figure shown is built from at least 3 distinct firms;
- a figure shown equals the sum of its records (so the mapping is right);
- no withheld figure can be recovered: its records are not a linear combination (differences
  included) of the figures shown anywhere — checked by the rank of the shown figures' incidence
  matrix, which is what an attacker subtracting totals can reach at best.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pytest
from flask import current_app
from sqlalchemy import select

from matchmaking.extensions import db
from matchmaking.models import (
    Commune,
    Decision,
    Exchange,
    Firm,
    Listing,
    Match,
    MatchStatus,
    MaterialFamily,
    Site,
    Unit,
)
from matchmaking.services import stats
from tests.factories import make_firm, make_listing

TODAY = datetime.now(UTC).date()
SECTIONS = [("A", 1, 3), ("B", 5, 9), ("C", 10, 33), ("D", 35, 35), ("E", 36, 39), ("F", 41, 43), ("G", 45, 47),
            ("H", 49, 53), ("I", 55, 56), ("J", 58, 63), ("K", 64, 66), ("L", 68, 68), ("M", 69, 75),
            ("N", 77, 82), ("O", 84, 84), ("P", 85, 85), ("Q", 86, 88), ("R", 90, 93), ("S", 94, 96),
            ("T", 97, 98), ("U", 99, 99)]


def section_of(naf: str | None) -> str:
    if not naf or not naf[:2].isdigit():
        return "?"
    division = int(naf[:2])
    return next((letter for letter, low, high in SECTIONS if low <= division <= high), "?")


def month_of(day: date | datetime) -> int:
    if isinstance(day, datetime):
        day = day.astimezone(UTC).date()
    return day.year * 12 + day.month - 1 - 2000 * 12


@dataclass(frozen=True)
class Rec:
    id: int
    firms: frozenset[int]
    month: int
    family: str
    category: str
    commune: str
    section: str
    value: float
    kind: str = ""
    level: int = 0
    status: str = ""
    attr: bool = False


@dataclass
class Truth:
    """The records of each kind, read independently of the statistics service."""

    groups: dict[str, list[Rec]] = field(default_factory=dict)


def read_truth() -> Truth:
    s = db.session
    ccma = {c for (c,) in s.execute(select(Commune.insee).where(Commune.ccma.is_(True)))}
    category = dict(s.execute(select(MaterialFamily.slug, MaterialFamily.ewc_stat_code)).all())
    category["?"] = "?"
    sites = {sid: (insee if insee in ccma else "outside") for sid, insee in s.execute(
        select(Site.id, Site.commune_insee))}
    main = {}
    for sid, fid, is_main in s.execute(select(Site.id, Site.firm_id, Site.is_main).order_by(Site.id)):
        if is_main or fid not in main:
            main[fid] = sites[sid]
    firms = {f.id: f for f in s.scalars(select(Firm))}
    t = Truth()
    t.groups["firms"] = [Rec(f.id, frozenset({f.id}), month_of(f.created_at), "", "", main.get(f.id, "outside"),
                             section_of(f.naf_code), 1.0) for f in firms.values()]
    listings = [x for x in s.scalars(select(Listing)) if x.published_at is not None and x.status.value != "draft"]

    def place(listing: Listing) -> dict[str, Any]:
        fam = listing.material_family or "?"
        return {"family": fam, "category": category.get(fam, "?"), "commune": sites[listing.site_id],
                "section": section_of(firms[listing.firm_id].naf_code)}

    t.groups["listings"] = [Rec(x.id, frozenset({x.firm_id}), month_of(x.published_at), value=1.0,
                                kind=x.kind.value, **place(x)) for x in listings]
    t.groups["offered"] = [Rec(x.id, frozenset({x.firm_id}), month_of(x.published_at), value=x.annual_tonnes,
                               **place(x)) for x in listings if x.kind.value == "offer" and x.annual_tonnes is not None]
    exchanges = list(s.scalars(select(Exchange)))
    months_of: dict[int, set[int]] = defaultdict(set)
    for e in exchanges:
        months_of[e.match_id].add(month_of(e.date))
    matches = {m.id: m for m in s.scalars(select(Match))}
    t.groups["matches"], t.groups["matched"] = [], []
    for m in matches.values():
        fam = m.offer.material_family or m.need.material_family or "?"
        where = {"family": fam, "category": category.get(fam, "?"), "commune": sites[m.offer.site_id],
                 "section": section_of(firms[m.offer.firm_id].naf_code)}
        n_months = len(months_of[m.id])
        f = m.follow_up.value
        if f == "recurring" or n_months >= 3:
            level = 4
        elif f == "exchanged" or n_months:
            level = 3
        elif m.status is MatchStatus.accepted or f == "trial":
            level = 2
        elif m.introduced_at or f == "contacted" or {m.offer_decision, m.need_decision} & {
                Decision.interested, Decision.accepted}:
            level = 1
        else:
            level = 0
        pair = frozenset({m.offer.firm_id, m.need.firm_id})
        t.groups["matches"].append(Rec(m.id, pair, month_of(m.created_at), value=1.0, level=level,
                                       status=m.status.value, **where))
        known = [x for x in (m.offer.annual_tonnes, m.need.annual_tonnes) if x is not None]
        if known:
            t.groups["matched"].append(Rec(m.id, pair, month_of(m.created_at), value=min(known), **where))
    earliest: dict[tuple[frozenset[int], str], date] = {}
    for e in exchanges:
        m = matches[e.match_id]
        key = (frozenset({m.offer.firm_id, m.need.firm_id}), m.offer.material_family or m.need.material_family or "?")
        earliest[key] = min(earliest.get(key, e.date), e.date)
    t.groups["exchanges"], t.groups["exchanged"] = [], []
    for e in exchanges:
        m = matches[e.match_id]
        fam = m.offer.material_family or m.need.material_family or "?"
        pair = frozenset({m.offer.firm_id, m.need.firm_id})
        found = m.created_at.astimezone(UTC).date()
        where = {"family": fam, "category": category.get(fam, "?"), "commune": sites[m.offer.site_id],
                 "section": section_of(firms[m.offer.firm_id].naf_code)}
        t.groups["exchanges"].append(Rec(e.id, pair, month_of(e.date), value=1.0, **where))
        if e.tonnes is not None:
            attr = e.date >= found and earliest[(pair, fam)] >= found
            t.groups["exchanged"].append(Rec(e.id, pair, month_of(e.date), value=e.tonnes, attr=attr, **where))
    return t


class Board:
    """Every figure seen over all the views: group → record set → what was shown."""

    def __init__(self, truth: Truth) -> None:
        self.truth = truth
        self.seen: dict[str, dict[frozenset[int], set[tuple[str, float | None]]]] = defaultdict(
            lambda: defaultdict(set))
        self.figures = 0

    def add(self, group: str, records: Iterable[Rec], figure: stats.Figure) -> None:
        ids = frozenset(r.id for r in records)
        if figure.status == "na":
            return
        self.figures += 1
        value = None if figure.value is None else round(figure.value, 6)
        self.seen[group][ids].add((figure.status, value))

    def select(self, group: str, period: stats.Period, f: stats.Filters, *, prefix: bool = False,
               **only: Any) -> list[Rec]:
        out = []
        for r in self.truth.groups[group]:
            if prefix:
                if r.month > period.last:
                    continue
            elif not period.first <= r.month <= period.last:
                continue
            if f.family and r.family != f.family or f.commune and r.commune != f.commune \
                    or f.section and r.section != f.section:
                continue
            if any((getattr(r, k) < v if k == "level" else getattr(r, k) != v) for k, v in only.items()):
                continue
            out.append(r)
        return out

    def view(self, d: stats.Dashboard) -> None:
        p, f = d.period, d.filters
        k = d.kpis
        if not f.family:
            self.add("firms", self.select("firms", p, f, prefix=True), k["firms"])
        self.add("listings", self.select("listings", p, f), k["listings"])
        self.add("listings", self.select("listings", p, f, kind="offer"), k["offers"])
        self.add("listings", self.select("listings", p, f, kind="need"), k["needs"])
        self.add("offered", self.select("offered", p, f), k["offered"])
        self.add("matches", self.select("matches", p, f), k["matches"])
        self.add("matched", self.select("matched", p, f), k["matched"])
        self.add("exchanges", self.select("exchanges", p, f), k["exchanges"])
        self.add("exchanged", self.select("exchanged", p, f), k["exchanged"])
        self.add("exchanged", self.select("exchanged", p, f, attr=True), k["attributable"])
        if k["distance"].status not in ("empty",):
            assert (k["distance"].value is None) == (k["exchanged"].value is None)
        for level, stage in enumerate(d.funnel):
            self.add("matches", self.select("matches", p, f, level=level), stage.figure)
        for status, figure in d.statuses.items():
            self.add("matches", self.select("matches", p, f, status=status), figure)
        shown_sum: dict[str, float] = defaultdict(float)
        for row in d.families:
            g = stats.Filters(row.key, f.commune, f.section)
            if f.family and f.family != row.key:
                continue
            self.add("offered", self.select("offered", p, g), row["offered"])
            self.add("matched", self.select("matched", p, g), row["matched"])
            self.add("exchanged", self.select("exchanged", p, g), row["exchanged"])
            self.add("exchanged", self.select("exchanged", p, g, attr=True), row["attributable"])
            for measure in ("co2", "landfill", "cost"):
                # Derived figures follow their tonnes: shown exactly when the tonnes are.
                assert (row[measure].value is None) == (row["exchanged"].value is None), (row.key, measure)
                shown_sum[measure] += row[measure].value or 0.0
            assert (row["co2_attributable"].value is None) == (row["attributable"].value is None)
        for measure in ("co2", "landfill", "cost"):
            if k[measure].value is not None:
                assert k[measure].value == pytest.approx(shown_sum[measure])
        for row in d.categories:
            records = [r for r in self.select("offered", p, f) if r.category == row.key]
            self.add("offered", records, row["offered"])
            self.add("matched", [r for r in self.select("matched", p, f) if r.category == row.key], row["matched"])
            self.add("exchanged", [r for r in self.select("exchanged", p, f) if r.category == row.key],
                     row["exchanged"])
        for row in d.communes:
            g = stats.Filters(f.family, row.key, f.section)
            if f.commune and f.commune != row.key:
                continue
            if not f.family:
                self.add("firms", self.select("firms", p, g, prefix=True), row["firms"])
            self.add("listings", self.select("listings", p, g), row["listings"])
            self.add("offered", self.select("offered", p, g), row["offered"])
            self.add("exchanges", self.select("exchanges", p, g), row["exchanges"])
            self.add("exchanged", self.select("exchanged", p, g), row["exchanged"])
        for row in d.sections:
            g = stats.Filters(f.family, f.commune, row.key)
            if f.section and f.section != row.key:
                continue
            if not f.family:
                self.add("firms", self.select("firms", p, g, prefix=True), row["firms"])
            self.add("listings", self.select("listings", p, g), row["listings"])
            self.add("offered", self.select("offered", p, g), row["offered"])
            self.add("exchanged", self.select("exchanged", p, g), row["exchanged"])
        for row in d.months:
            year, month = (int(x) for x in row.key.split("-"))
            one = stats.Period(month_of(date(year, month, 1)), month_of(date(year, month, 1)))
            self.add("listings", self.select("listings", one, f), row["listings"])
            self.add("matches", self.select("matches", one, f), row["matches"])
            self.add("exchanges", self.select("exchanges", one, f), row["exchanges"])
            self.add("exchanged", self.select("exchanged", one, f), row["exchanged"])

    def audit(self) -> dict[str, tuple[int, int]]:
        """Check every group; returns (sets shown, sets withheld) per group."""
        report = {}
        for group, sets in self.seen.items():
            records = {r.id: r for r in self.truth.groups[group]}
            shown, hidden = [], []
            for ids, outcomes in sets.items():
                statuses = {status for status, _ in outcomes}
                firms = frozenset().union(*(records[i].firms for i in ids)) if ids else frozenset()
                if not ids:
                    assert statuses <= {"empty"}, (group, outcomes)
                    continue
                assert "empty" not in statuses, (group, sorted(ids)[:5], outcomes)
                if "shown" in statuses:
                    assert len(firms) >= stats.MIN_FIRMS, (group, sorted(ids)[:8], len(firms))
                    total = sum(records[i].value for i in ids)
                    for status, value in outcomes:
                        if status == "shown":
                            assert value == pytest.approx(total, rel=1e-6, abs=1e-6), (group, sorted(ids)[:8])
                    shown.append(ids)
                if "shown" in statuses and group in MAGNITUDES:
                    assert not dominated([records[i] for i in ids]), (group, sorted(ids)[:8])
                if statuses & {"primary", "dominance", "secondary"}:
                    if "primary" in statuses:
                        assert len(firms) < stats.MIN_FIRMS, (group, len(firms))
                    if "dominance" in statuses:
                        assert group in MAGNITUDES and dominated([records[i] for i in ids]), (group, sorted(ids)[:8])
                    hidden.append(ids)
            recoverable = _in_span(shown, hidden, list(records))
            assert not recoverable, (
                f"{group}: {len(recoverable)} withheld figure(s) can be worked out from figures shown, "
                f"e.g. records {sorted(recoverable[0])[:10]}")
            report[group] = (len(shown), len(hidden))
        return report


MAGNITUDES = ("offered", "matched", "exchanged")  # tonnes: the dominance rule applies


def dominated(records: list[Rec], one: float | None = None, two: float | None = None) -> bool:
    """This file's own reading of the (n, k) dominance rule: a firm's part is the tonnes of the
    records it takes part in; a pair's, of the records either takes part in. The thresholds are the
    application's settings unless given."""
    settings = current_app.config
    one = settings.get("STATS_DOMINANCE_ONE", 0.85) if one is None else one
    two = settings.get("STATS_DOMINANCE_TWO", 0.90) if two is None else two
    total = sum(r.value for r in records)
    if total <= 0:
        return False
    firms = sorted(frozenset().union(*(r.firms for r in records)))
    part = {f: sum(r.value for r in records if f in r.firms) for f in firms}
    if max(part.values()) > one * total:
        return True
    shared: dict[tuple[int, int], float] = defaultdict(float)
    for r in records:
        for a, b in itertools.combinations(sorted(r.firms), 2):
            shared[(a, b)] += r.value
    return any(part[a] + part[b] - shared[(a, b)] > two * total for a, b in itertools.combinations(firms, 2))


def _in_span(shown: list[frozenset[int]], hidden: list[frozenset[int]], ids: list[int]) -> list[frozenset[int]]:
    """The hidden sets whose indicator vector is a linear combination of the shown ones."""
    if not hidden or not shown:
        return []
    index = {record: i for i, record in enumerate(ids)}

    def matrix(sets: list[frozenset[int]]) -> np.ndarray:
        out = np.zeros((len(sets), len(ids)))
        for row, members in enumerate(sets):
            out[row, [index[m] for m in members]] = 1.0
        return out

    a = matrix(shown)
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    rank = int((s > s.max() * 1e-10).sum())
    basis = vt[:rank]  # orthonormal rows spanning the shown figures
    h = matrix(hidden)
    residual = h - (h @ basis.T) @ basis
    norms = np.linalg.norm(residual, axis=1)
    return [hidden[i] for i in np.flatnonzero(norms < 1e-6)]


View = tuple[stats.Period, stats.Filters]


def _views(truth: Truth, *, pairs_periods: int, triples: int, seed: int = 7) -> list[View]:
    current = stats.month_index(TODAY)
    months = sorted({r.month for group in truth.groups.values() for r in group})
    first = months[0] if months else current
    periods = [stats.default_period(TODAY), stats.Period(first, current),
               stats.Period(stats.month_index(date(TODAY.year - 1, 1, 1)),
                            stats.month_index(date(TODAY.year - 1, 12, 1))),
               stats.Period(current - 2, current - 2), stats.Period(stats.month_index(date(TODAY.year, 1, 1)), current),
               stats.Period(current - 7, current - 7), stats.Period(current - 9, current - 4),
               stats.Period(current - 13, current - 13)]
    records = [r for name in ("listings", "exchanged", "matches") for r in truth.groups[name]]
    families = sorted({r.family for r in records})
    communes = sorted({r.commune for r in records})
    sections = sorted({r.section for r in records})
    singles = [stats.Filters()] + [stats.Filters(family=x) for x in families] + \
        [stats.Filters(commune=x) for x in communes] + [stats.Filters(section=x) for x in sections]
    doubles = [stats.Filters(family=a, commune=b) for a, b in itertools.product(families, communes)] + \
        [stats.Filters(family=a, section=b) for a, b in itertools.product(families, sections)] + \
        [stats.Filters(commune=a, section=b) for a, b in itertools.product(communes, sections)]
    rng = random.Random(seed)
    all_triples = list(itertools.product(families, communes, sections))
    rng.shuffle(all_triples)
    trebles = [stats.Filters(*t) for t in all_triples[:triples]]
    views = [(p, f) for p in periods for f in singles]
    views += [(p, f) for p in periods[:pairs_periods] for f in doubles + trebles]
    return views


def run_attack(views: list[tuple[stats.Period, stats.Filters]]) -> tuple[Board, dict[str, tuple[int, int]]]:
    truth = read_truth()
    board = Board(truth)
    tables = stats.tables(db.session, TODAY)
    for period, filters in views:
        board.view(stats.dashboard(db.session, period, filters, TODAY, precomputed=tables))
    return board, board.audit()


@pytest.mark.slow
def test_no_filter_combination_reveals_a_withheld_figure_on_the_demo_territory(demo_app: Any) -> None:
    with demo_app.app_context():
        views = _views(read_truth(), pairs_periods=3, triples=80)
        board, report = run_attack(views)
    # The attack had material: many figures, many of them withheld, in every kind of record.
    assert board.figures > 50_000
    assert all(shown >= 5 for shown, _ in report.values()), report
    assert sum(hidden for _, hidden in report.values()) > 200, report


# --- a territory small enough that every total has a withheld part ---------------------------------


def _exchange(session: Any, offer: Listing, need: Listing, when: date, tonnes: float, found: date) -> None:
    match = session.scalar(select(Match).where(Match.offer_id == offer.id, Match.need_id == need.id))
    if match is None:
        match = Match(offer=offer, need=need, score=0.8, explanation={}, status=MatchStatus.accepted,
                      offer_decision=Decision.accepted, need_decision=Decision.accepted,
                      created_at=datetime.combine(found, datetime.min.time(), tzinfo=UTC), distance_km=8.0)
        session.add(match)
        session.flush()
    session.add(Exchange(match=match, quantity=tonnes, unit=Unit.t, tonnes=tonnes, date=when))


def _small_territory(session: Any) -> None:
    """Five firms: wood flows between three of them, one cardboard flow between the other two."""
    insee = ["53271", "53185", "53121", "53080", "53246"]
    firms = [make_firm(session, naf_code=naf, commune_insee=c)
             for naf, c in zip(["16.10A", "16.24Z", "01.47Z", "47.11D", "14.13Z"], insee, strict=True)]
    wood = [make_listing(session, firms[i], kind=kind, title=title, low_code="03 01 05", quantity=5, unit="t",
                         frequency="monthly", **({"radius_km": 40} if kind == "need" else {}))
            for i, kind, title in ((0, "offer", "Sciure"), (1, "need", "Sciure pour litière"),
                                   (2, "need", "Copeaux"))]
    card = [make_listing(session, firms[3], title="Cartons", low_code="15 01 01", quantity=1, unit="t",
                         frequency="monthly"),
            make_listing(session, firms[4], kind="need", title="Carton de calage", quantity=1, unit="t",
                         frequency="monthly", radius_km=30)]
    month0 = date(TODAY.year, TODAY.month, 1)
    found = date.fromordinal(month0.toordinal() - 200)
    for back in range(1, 6):
        when = date.fromordinal(month0.toordinal() - 30 * back)
        _exchange(session, wood[0], wood[1], when, 4.0 + back, found)
        _exchange(session, wood[0], wood[2], when, 2.0 + back / 10, found)
        _exchange(session, card[0], card[1], when, 0.7, found)
    session.commit()
    stats._cache.clear()


@pytest.fixture()
def count_rule_only(session: Any, monkeypatch: Any) -> None:
    """The rule of 3 firms alone: the small territory's wood is one sawmill's, which the dominance
    rule would withhold too (tests/staff/test_dominance.py)."""
    monkeypatch.setitem(current_app.config, "STATS_DOMINANCE_ONE", 1.0)
    monkeypatch.setitem(current_app.config, "STATS_DOMINANCE_TWO", 1.0)


def test_a_lone_pair_cannot_be_recovered_from_totals_in_a_small_territory(session: Any, count_rule_only: None) -> None:
    """The cardboard tonnes are withheld (2 firms); the total and the wood row cannot both be shown,
    or their difference would give the cardboard away."""
    _small_territory(session)
    truth = read_truth()
    views = _views(truth, pairs_periods=8, triples=200)
    board, report = run_attack(views)
    d = stats.dashboard(session, stats.default_period(TODAY), stats.Filters(), TODAY)
    rows = {r.key: r for r in d.families}
    assert rows["paper_cardboard"]["exchanged"].status == "primary"
    # Exactly one of the two is withheld to protect the cardboard figure.
    assert [d.kpis["exchanged"].value is None, rows["wood"]["exchanged"].value is None].count(True) == 1
    assert report["exchanged"][1] > 0


def test_the_attack_finds_the_leak_of_primary_suppression_alone(session: Any, monkeypatch: Any,
                                                              count_rule_only: None) -> None:
    """The check has teeth: withholding only the figures of fewer than 3 firms (no complementary
    suppression) lets the attack recover the cardboard flow from the total minus the wood."""
    _small_territory(session)
    monkeypatch.setattr(stats, "release", lambda n, candidates, primaries, chunk=0: set(candidates))
    with pytest.raises(AssertionError, match="can be worked out"):
        run_attack(_views(read_truth(), pairs_periods=1, triples=0))
    stats._cache.clear()
