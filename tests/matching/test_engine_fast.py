"""The fast paths of the engine give the scores of the plain computation, and the same top-k.

The reference is ``vectors.pair_block`` with ``dense=True`` (every pair of a block, the way the
evaluation scores) followed by ``scoring``'s context and final score; every fast path (block
kernel, route classes, pruning by bounds, blocks by geography, threads, the buffer of pending
listings) must agree with it.
"""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import date

import numpy as np
import pytest

from matchmaking.matching import engine, geo
from matchmaking.matching.bench import generate
from matchmaking.matching.engine import Index, Rematch
from matchmaking.matching.records import NEED, OFFER, Listing
from matchmaking.matching.scoring import MIN_SCORE, context_components, context_fit, final_score, material_relevance
from matchmaking.matching.vectors import Scratch, SideMatrices, pair_block, score_block


def varied_listings(offers: int, needs: int, seed: int) -> list[Listing]:
    """The bench's listings, with what it leaves out: sites unknown, lots, dates, hazardous
    offers and needs that take them, odd radii."""
    rng = random.Random(seed)
    out = []
    for x in generate(offers, needs, seed):
        changes: dict[str, object] = {}
        if rng.random() < 0.05:
            changes.update(lat=None, lon=None)
        if rng.random() < 0.2:
            start = date(2025, 1, 1).toordinal() + rng.randrange(0, 400)
            changes["available_from"] = date.fromordinal(start)
            if rng.random() < 0.5:
                changes["available_until"] = date.fromordinal(start + rng.randrange(10, 200))
        if x.kind == OFFER and rng.random() < 0.1:
            changes["hazardous"] = True
        if x.kind == NEED:
            if rng.random() < 0.3:
                changes["accepts_hazardous"] = True
            if rng.random() < 0.1:
                changes["radius_km"] = rng.choice((5.0, 33.3, 400.0))
            if rng.random() < 0.2:
                changes["lot_tonnes"] = round(rng.lognormvariate(1.0, 1.5), 2)
        out.append(dataclasses.replace(x, **changes))
    return out


def reference_scores(index: Index) -> dict[tuple[int, int], float]:
    """Every (offer id, need id) scoring at least MIN_SCORE, the plain way."""
    offers = index._sides[OFFER].matrices
    needs = index._sides[NEED].matrices
    rows, cols, raw, ctx = pair_block(offers, np.arange(offers.size), needs, np.arange(needs.size), dense=True)
    cres = context_components(ctx)
    scores = final_score(material_relevance(raw), context_fit(cres.raw), cres.allowed)
    ok = scores >= MIN_SCORE
    return {
        (int(o), int(n)): float(s)
        for o, n, s in zip(offers.ids[rows[ok]], needs.ids[cols[ok]], scores[ok], strict=True)
    }


def reference_tops(pairs: dict[tuple[int, int], float], k: int) -> dict[int, list[tuple[int, float]]]:
    tops: dict[int, list[tuple[int, float]]] = {}
    for (o, n), s in pairs.items():
        tops.setdefault(o, []).append((n, s))
        tops.setdefault(n, []).append((o, s))
    return {i: sorted(v, key=lambda t: (-t[1], t[0]))[:k] for i, v in tops.items()}


def assert_same_tops(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert len(got) == len(want)
    for (gi, gs), (wi, ws) in zip(got, want, strict=True):
        assert abs(gs - ws) <= 1e-9
        if gi != wi:  # only two pairs whose scores agree to rounding may swap
            assert abs(gs - ws) <= 1e-12


def crowded(listings: list[Listing], seed: int) -> list[Listing]:
    """The same listings around two towns only: many candidates per listing, so that every bound
    and every pass of the pruning is at work."""
    rng = random.Random(seed)
    out = []
    for x in listings:
        if x.lat is None:
            out.append(x)
            continue
        lat, lon = rng.choice(((48.857, 2.352), (45.764, 4.836)))
        out.append(dataclasses.replace(x, lat=lat + rng.gauss(0, 0.2), lon=lon + rng.gauss(0, 0.25)))
    return out


@pytest.fixture(scope="module", params=["spread", "crowded"])
def varied(request: pytest.FixtureRequest) -> tuple[Index, dict[tuple[int, int], float]]:
    listings = varied_listings(700, 900, 5)
    if request.param == "crowded":
        listings = crowded(listings, 6)
    index = Index.build(listings)
    return index, reference_scores(index)


def test_block_kernel_gives_the_plain_scores(varied: tuple[Index, dict[tuple[int, int], float]]) -> None:
    index, want = varied
    offers = index._sides[OFFER].matrices
    needs = index._sides[NEED].matrices
    b = score_block(offers, np.arange(offers.size), needs, np.arange(needs.size), Scratch())
    got = {
        (int(offers.ids[o]), int(needs.ids[n])): float(s)
        for o, n, s in zip(b.offer_pos, b.need_pos, b.score, strict=True)
    }
    assert set(got) == set(want)
    assert max(abs(got[key] - want[key]) for key in want) <= 1e-9
    assert np.all(np.diff(b.need_pos) >= 0)  # need-major


def test_rematch_equals_brute_force(varied: tuple[Index, dict[tuple[int, int], float]]) -> None:
    index, pairs = varied
    want = reference_tops(pairs, 10)
    got = index.rematch_all(k=10)
    assert set(got) == {*index.ids(OFFER), *index.ids(NEED)}
    for listing_id in got:
        assert_same_tops(got[listing_id], want.get(listing_id, []))


def test_small_blocks_and_threads_change_nothing(
    varied: tuple[Index, dict[tuple[int, int], float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    index, _ = varied
    serial = index.rematch_all(k=5, workers=1)
    monkeypatch.setattr(engine, "MAX_BLOCK_CELLS", 5_000)
    monkeypatch.setattr(engine, "BLOCK_OVERHEAD_CELLS", 100)
    monkeypatch.setattr(engine, "_PAIRS_AT_ONCE", 300)
    parallel = index.rematch_all(k=5, workers=2)
    assert list(parallel) == list(serial)
    for listing_id in serial:
        assert parallel[listing_id] == serial[listing_id]


def test_blocks_hold_every_offer_within_each_need_radius(varied: tuple[Index, dict[tuple[int, int], float]]) -> None:
    index, _ = varied
    offers = index._sides[OFFER].matrices
    needs = index._sides[NEED].matrices
    seen: set[int] = set()
    for oi, ni in engine._blocks(offers, needs):
        assert not seen & set(ni.tolist())  # each need in one block
        seen |= set(ni.tolist())
        members = set(oi.tolist())
        for n in ni.tolist():
            km = geo.haversine_km_arrays(
                offers.lat, offers.lon, np.full(offers.size, needs.lat[n]), np.full(offers.size, needs.lon[n])
            )
            within = np.flatnonzero(~(km > needs.radius[n]))  # unknown sites (NaN) included
            assert set(within.tolist()) <= members
    assert seen == set(range(needs.size))


def test_match_and_search_agree_with_the_plain_scores(varied: tuple[Index, dict[tuple[int, int], float]]) -> None:
    index, pairs = varied
    want = reference_tops(pairs, 10)
    for listing_id in index.ids(OFFER)[:40] + index.ids(NEED)[:40]:
        listing = index.get(listing_id)
        assert listing is not None
        assert_same_tops([(i, s) for i, s, _ in index.match(listing, k=10)], want.get(listing_id, []))
    hits = index.search("sciure de bois", kind=OFFER, lat=48.857, lon=2.352, radius_km=50.0, family="wood", k=5)
    assert all(expl.distance_km is None or expl.distance_km <= 50.0 for _, _, expl in hits)
    assert all("wood" in index._families(index._sides[OFFER], i) for i, _, _ in hits)


def test_pending_listings_score_like_compacted_ones() -> None:
    listings = varied_listings(300, 300, 8)
    index = Index.build(listings[:400])
    for listing in listings[400:]:
        index.add(listing)  # stays in the buffer (below compact_min)
    changed = dataclasses.replace(listings[0], title="Palettes bois cassées")
    index.update(changed)
    index.remove(listings[1].id)
    assert index._sides[OFFER].pending or index._sides[NEED].pending
    probes = [changed, *listings[405:425], *listings[10:20]]
    before = {p.id: [(i, s) for i, s, _ in index.match(p, k=8)] for p in probes}
    fresh = Index.build([x for x in [changed, *listings[2:]] if x.id != listings[1].id])
    index.compact()
    for p in probes:
        after = [(i, s) for i, s, _ in index.match(p, k=8)]
        again = [(i, s) for i, s, _ in fresh.match(p, k=8)]
        assert after == before[p.id] == again
        assert listings[1].id not in {i for i, _ in after}


def test_rematch_is_a_read_only_mapping() -> None:
    result = Rematch(
        np.array([7, 3, 5]),
        np.array([[5, -1], [-1, -1], [7, 3]]),
        np.array([[0.5, -1.0], [-1.0, -1.0], [0.5, 0.25]]),
    )
    assert len(result) == 3 and list(result) == [3, 5, 7]
    assert result[7] == [(5, 0.5)] and result[3] == [] and result[5] == [(7, 0.5), (3, 0.25)]
    assert 4 not in result and 5 in result and "x" not in result
    assert result.get(4) is None and result.pairs() == 3
    with pytest.raises(KeyError):
        result[4]


def test_chord_distance_and_radius_cosines_agree_with_haversine() -> None:
    rng = np.random.default_rng(0)
    lat1, lon1 = rng.uniform(42, 51, 5000), rng.uniform(-5, 8, 5000)
    lat2, lon2 = lat1 + rng.normal(0, 1, 5000), lon1 + rng.normal(0, 1, 5000)
    lat2[:5], lon2[:5] = lat1[:5], lon1[:5] + 1e-7
    exact = geo.haversine_km_arrays(lat1, lon1, lat2, lon2)
    chord = geo.chord_km(geo.unit_vectors(lat1, lon1), geo.unit_vectors(lat2, lon2))
    assert np.max(np.abs(exact - chord)) < 1e-9
    radius = rng.uniform(1, 300, 5000)
    located = np.ones(5000, dtype=bool)
    dots = np.einsum("ij,ij->j", geo.unit_vectors(lat1, lon1), geo.unit_vectors(lat2, lon2))
    may = dots >= geo.cos_reach(radius, located)
    sure = dots >= geo.cos_reach(radius, located, inside=True)
    assert np.all(may[exact <= radius]) and not np.any(sure[exact > radius])
    assert np.all(geo.cos_reach(radius, ~located) == -2.0)
    assert geo.unit_vectors(np.array([math.nan]), np.array([1.0])).tolist() == [[0.0], [0.0], [0.0]]


def test_side_matrices_take_and_concat_keep_rows() -> None:
    index = Index.build(varied_listings(60, 40, 3))
    side = index._sides[OFFER].matrices
    rows = np.array([5, 1, 30], dtype=np.int64)
    part = side.take(rows)
    both = SideMatrices.concat([part, side.take(np.array([2], dtype=np.int64))], OFFER)
    assert both.ids.tolist() == side.ids[[5, 1, 30, 2]].tolist()
    for comp, mat in side.mats.items():
        assert (both.mats[comp][:3] != mat[rows]).nnz == 0
    assert np.array_equal(both.xyz[:, :3], side.xyz[:, rows])
