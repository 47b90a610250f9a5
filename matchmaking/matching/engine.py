"""The matching index: offers and needs, matched both ways, searched, and rematched in bulk.

``Index`` keeps, for each kind, the profiles of its listings as sparse matrices (see
``vectors``). A listing is matched against the opposite kind without scoring everything: one
sparse row × matrix product per component yields exactly the listings that share a feature with it
(all others score 0), then the context (distance, quantities, dates) and the gates are applied to
those candidates only. Listings added or changed since the last compaction sit in a small buffer
scored pair by pair; the matrices are rebuilt when the buffer grows.

The full rematch works by geographic blocks: needs grouped by grid cell, each cell against the
offers within reach of its largest radius (a BallTree query), block products, gates, then top-k
per need and a streaming top-k per offer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from matchmaking.matching import geo
from matchmaking.matching.records import NEED, OFFER, Listing, opposite
from matchmaking.matching.scoring import (
    CANDIDATE_BLOCKS,
    FEATURE_BLOCKS,
    MATERIAL_COMPONENTS,
    MIN_SCORE,
    ContextArrays,
    Explanation,
    Profile,
    build_profile,
    components_from_blocks,
    context_components,
    context_fit,
    explain,
    final_score,
    finish_component,
    material_relevance,
    sector_known,
)
from matchmaking.matching.vectors import FeatureSpace, SideMatrices, context_arrays, pair_block

Match = tuple[int, float, Explanation]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

GRID_DEG = 1.0  # cell size of the rematch blocks
MAX_BLOCK_NEEDS = 400


@dataclass
class _Side:
    kind: str
    profiles: dict[int, Profile]
    matrices: SideMatrices
    transposed: dict[str, sparse.csr_matrix]
    row_of: dict[int, int]
    alive: NDArray[np.bool_]
    pending: set[int]  # ids added or changed since the matrices were built


class Index:
    """Offers and needs, matched against each other.

    >>> index = Index.build(listings)
    >>> index.match(listing, k=10)      # [(other_id, score, explanation), ...] best first
    >>> index.rematch_all(k=10)         # {listing_id: [(other_id, score), ...]} for every listing
    >>> index.search("sciure", kind="offer", lat=48.4, lon=-0.2, radius_km=50)
    """

    compact_min = 1_000
    compact_share = 0.05

    def __init__(self, listings: Iterable[Listing] = ()) -> None:
        self.space = FeatureSpace()
        profiles: dict[str, dict[int, Profile]] = {OFFER: {}, NEED: {}}
        for listing in listings:
            profiles[listing.kind][listing.id] = build_profile(listing)
        self._pending_cache: dict[str, tuple[object, list[int], SideMatrices]] = {}
        self._sides = {kind: self._make_side(kind, profiles[kind]) for kind in (OFFER, NEED)}

    @classmethod
    def build(cls, listings: Iterable[Listing]) -> Index:
        return cls(listings)

    # -- maintenance --------------------------------------------------------------------------
    def _make_side(self, kind: str, profiles: dict[int, Profile]) -> _Side:
        ordered = list(profiles.values())
        matrices = SideMatrices.build(ordered, self.space, kind=kind)
        transposed = {c: matrices.mats[c].T.tocsr() for c in FEATURE_BLOCKS}
        return _Side(
            kind=kind,
            profiles=profiles,
            matrices=matrices,
            transposed=transposed,
            row_of={p.listing.id: i for i, p in enumerate(ordered)},
            alive=np.ones(len(ordered), dtype=bool),
            pending=set(),
        )

    def compact(self) -> None:
        """Rebuild the matrices of both kinds (done automatically when the buffer grows)."""
        for kind in (OFFER, NEED):
            side = self._sides[kind]
            if side.pending or not side.alive.all():
                self._sides[kind] = self._make_side(kind, side.profiles)

    def _maybe_compact(self, side: _Side) -> None:
        limit = max(self.compact_min, int(self.compact_share * len(side.profiles)))
        if len(side.pending) > limit:
            self._sides[side.kind] = self._make_side(side.kind, side.profiles)

    def add(self, listing: Listing) -> None:
        """Add or replace a listing (an update is an add with the same id)."""
        for kind in (OFFER, NEED):
            if kind != listing.kind and listing.id in self._sides[kind].profiles:
                self.remove(listing.id, kind)
        side = self._sides[listing.kind]
        side.profiles[listing.id] = build_profile(listing)
        row = side.row_of.get(listing.id)
        if row is not None:
            side.alive[row] = False
        side.pending.add(listing.id)
        self._maybe_compact(side)

    update = add

    def remove(self, listing_id: int, kind: str | None = None) -> None:
        for k in (kind,) if kind else (OFFER, NEED):
            side = self._sides[k]
            if listing_id in side.profiles:
                del side.profiles[listing_id]
                side.pending.discard(listing_id)
                row = side.row_of.get(listing_id)
                if row is not None:
                    side.alive[row] = False

    def __len__(self) -> int:
        return sum(len(s.profiles) for s in self._sides.values())

    def __contains__(self, listing_id: object) -> bool:
        return any(listing_id in s.profiles for s in self._sides.values())

    def get(self, listing_id: int) -> Listing | None:
        for side in self._sides.values():
            p = side.profiles.get(listing_id)
            if p is not None:
                return p.listing
        return None

    def ids(self, kind: str) -> list[int]:
        return list(self._sides[kind].profiles)

    # -- one listing ----------------------------------------------------------------------------
    def _query_rows(self, query: Profile, side: _Side) -> tuple[IntArray, dict[str, FloatArray]]:
        """Rows of ``side``'s matrices sharing a candidate feature with ``query``, with component values."""
        n = side.matrices.size
        if n == 0:
            return np.zeros(0, dtype=np.int64), {c: np.zeros(0) for c in MATERIAL_COMPONENTS}
        dense: dict[str, FloatArray] = {}
        hit = np.zeros(n, dtype=bool)
        for comp in FEATURE_BLOCKS:
            idx, vals = self.space.row(comp, query.features[comp], grow=False)
            acc = np.zeros(n, dtype=np.float64)
            if idx:
                mt = side.transposed[comp]
                keep = [j for j, col in enumerate(idx) if col < mt.shape[0]]
                if keep:
                    q = sparse.csr_matrix(
                        (np.array([vals[j] for j in keep]), np.array([idx[j] for j in keep]), np.array([0, len(keep)])),
                        shape=(1, mt.shape[0]),
                    )
                    prod = (q @ mt).tocsr()
                    acc[prod.indices] = prod.data
                    if comp in CANDIDATE_BLOCKS:
                        hit[prod.indices] = True
            dense[comp] = acc
        hit &= side.alive
        rows = np.flatnonzero(hit).astype(np.int64)
        known = side.matrices.sector_known[rows] & sector_known(query)
        return rows, components_from_blocks({c: finish_component(c, dense[c][rows]) for c in FEATURE_BLOCKS}, known)

    def _pending_matrices(self, side: _Side) -> tuple[list[int], SideMatrices]:
        key = (side.kind, frozenset(side.pending), id(side.matrices))
        cached = self._pending_cache.get(side.kind)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        ids = sorted(side.pending)
        mats = SideMatrices.build([side.profiles[i] for i in ids], FeatureSpace(), kind=side.kind)
        self._pending_cache[side.kind] = (key, ids, mats)
        return ids, mats

    def _score_against(self, query: Profile, side: _Side) -> tuple[list[int], FloatArray, dict[str, FloatArray]]:
        """Scores of ``query`` against every live listing of ``side`` that can score above 0."""
        rows, raw = self._query_rows(query, side)
        qm = SideMatrices.build([query], FeatureSpace(), kind=query.kind)
        parts: list[tuple[SideMatrices, IntArray]] = [(side.matrices, rows)]
        ids: list[int] = side.matrices.ids[rows].tolist()
        if side.pending:
            from matchmaking.matching.scoring import material_raw

            p_ids, p_mats = self._pending_matrices(side)
            add_raw: dict[str, list[float]] = {c: [] for c in MATERIAL_COMPONENTS}
            keep: list[int] = []
            for j, pid in enumerate(p_ids):
                p = side.profiles[pid]
                o, nd = (query, p) if query.kind == OFFER else (p, query)
                r = material_raw(o, nd)
                if any(v > 0 for v in r.values()):
                    keep.append(j)
                    for c in MATERIAL_COMPONENTS:
                        add_raw[c].append(r[c])
            if keep:
                ids = ids + [p_ids[j] for j in keep]
                raw = {c: np.concatenate([raw[c], np.array(add_raw[c])]) for c in MATERIAL_COMPONENTS}
                parts.append((p_mats, np.array(keep, dtype=np.int64)))
        if not ids:
            return [], np.zeros(0), raw
        ctx_parts = []
        for mats, prow in parts:
            if len(prow) == 0:
                continue
            zeros = np.zeros(len(prow), dtype=np.int64)
            if query.kind == OFFER:
                ctx_parts.append(context_arrays(qm, zeros, mats, prow))
            else:
                ctx_parts.append(context_arrays(mats, prow, qm, zeros))
        ctx = ctx_parts[0] if len(ctx_parts) == 1 else _concat_ctx(ctx_parts)
        cres = context_components(ctx)
        scores = final_score(material_relevance(raw), context_fit(cres.raw), cres.allowed)
        return ids, scores, raw

    def _top(self, query: Profile, side: _Side, k: int, keep: NDArray[np.bool_] | None = None) -> list[Match]:
        ids, scores, raw = self._score_against(query, side)
        if not ids:
            return []
        ok = scores >= MIN_SCORE
        if keep is not None:
            ok &= keep[: len(ids)] if len(keep) >= len(ids) else ok
        cand = np.flatnonzero(ok)
        if len(cand) == 0:
            return []
        if len(cand) > k:
            part = np.argpartition(-scores[cand], k - 1)[:k]
            cand = cand[part]
        id_arr = np.array(ids, dtype=np.int64)
        order = np.lexsort((id_arr[cand], -scores[cand]))
        out: list[Match] = []
        for j in cand[order]:
            other = side.profiles[ids[j]]
            mraw = {c: float(raw[c][j]) for c in MATERIAL_COMPONENTS}
            offer, need = (query, other) if query.kind == OFFER else (other, query)
            expl = explain(offer, need, mraw)
            out.append((ids[j], expl.score, expl))
        return out

    def match(self, listing: Listing, k: int = 10) -> list[Match]:
        """The ``k`` best listings of the opposite kind for ``listing`` (indexed or not)."""
        side = self._sides[opposite(listing.kind)]
        query = build_profile(listing)
        return [m for m in self._top(query, side, k) if m[0] != listing.id or True]

    def explain(self, offer_id: int, need_id: int) -> Explanation:
        offer = self._sides[OFFER].profiles[offer_id]
        need = self._sides[NEED].profiles[need_id]
        return explain(offer, need)

    def search(
        self,
        query_text: str,
        kind: str = OFFER,
        lat: float | None = None,
        lon: float | None = None,
        radius_km: float | None = None,
        family: str | None = None,
        k: int = 10,
    ) -> list[Match]:
        """Listings of ``kind`` that best answer ``query_text`` (a buyer searching offers, or a
        seller searching needs), within ``radius_km`` of (lat, lon) and of ``family`` if given."""
        probe = Listing(
            id=-1,
            kind=opposite(kind),
            title=query_text,
            family=family,
            lat=lat,
            lon=lon,
            radius_km=radius_km,
            accepts_hazardous=True,
        )
        side = self._sides[kind]
        query = build_profile(probe)
        results = self._top(query, side, max(k * 5, 50) if (family or radius_km) else k)
        out: list[Match] = []
        for other_id, score, expl in results:
            other = side.profiles[other_id]
            if family and family not in other.families:
                continue
            if radius_km is not None and expl.distance_km is not None and expl.distance_km > radius_km:
                continue
            out.append((other_id, score, expl))
            if len(out) >= k:
                break
        return out

    # -- everything -----------------------------------------------------------------------------
    def rematch_all(self, k: int = 10) -> dict[int, list[tuple[int, float]]]:
        """Top-``k`` (other_id, score) for every listing of both kinds, best first."""
        self.compact()
        offers = self._sides[OFFER].matrices
        needs = self._sides[NEED].matrices
        result: dict[int, list[tuple[int, float]]] = {}
        n_off = offers.size
        best_s = np.full((n_off, k), -1.0)
        best_n = np.full((n_off, k), -1, dtype=np.int64)
        for oi, ni in _blocks(offers, needs):
            rows, cols, raw, ctx = pair_block(offers, oi, needs, ni)
            if len(rows) == 0:
                continue
            cres = context_components(ctx)
            scores = final_score(material_relevance(raw), context_fit(cres.raw), cres.allowed)
            ok = scores >= MIN_SCORE
            o_rows = oi[rows[ok]]
            n_rows = ni[cols[ok]]
            s = scores[ok]
            # Needs: all their candidates are in this block.
            for need_row, top in _top_k_groups(n_rows, o_rows, s, k):
                result[int(needs.ids[need_row])] = [(int(offers.ids[o]), float(v)) for o, v in top]
            _merge_offer_tops(best_s, best_n, o_rows, n_rows, s, k)
        for need_id in needs.ids:
            result.setdefault(int(need_id), [])
        for row in range(n_off):
            valid = best_n[row] >= 0
            pairs = sorted(
                zip(best_n[row][valid].tolist(), best_s[row][valid].tolist(), strict=True),
                key=lambda t: (-t[1], int(needs.ids[t[0]])),
            )
            result[int(offers.ids[row])] = [(int(needs.ids[nr]), float(v)) for nr, v in pairs]
        return result

    def exhaustive_top(self, listing_id: int, k: int = 10) -> list[tuple[int, float]]:
        """Top-k by scoring every listing of the opposite kind (reference for recall checks)."""
        self.compact()
        for kind in (OFFER, NEED):
            side = self._sides[kind]
            if listing_id in side.profiles:
                break
        else:
            raise KeyError(listing_id)
        other = self._sides[opposite(kind)].matrices
        me = side.matrices
        row = np.array([side.row_of[listing_id]], dtype=np.int64)
        every = np.arange(other.size, dtype=np.int64)
        if kind == OFFER:
            rows, cols, raw, ctx = pair_block(me, row, other, every, dense=True)
            other_rows = cols
        else:
            rows, cols, raw, ctx = pair_block(other, every, me, row, dense=True)
            other_rows = rows
        cres = context_components(ctx)
        scores = final_score(material_relevance(raw), context_fit(cres.raw), cres.allowed)
        ok = scores >= MIN_SCORE
        pairs = sorted(
            zip(other.ids[other_rows[ok]].tolist(), scores[ok].tolist(), strict=True), key=lambda t: (-t[1], t[0])
        )
        return [(int(a), float(b)) for a, b in pairs[:k]]


def _concat_ctx(parts: list[ContextArrays]) -> ContextArrays:
    fields = ContextArrays.__dataclass_fields__
    return ContextArrays(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})


def _blocks(offers: SideMatrices, needs: SideMatrices) -> Iterable[tuple[IntArray, IntArray]]:
    """(offer rows, need rows) blocks covering every pair that can pass the radius gate."""
    if needs.size == 0 or offers.size == 0:
        return
    o_known = ~(np.isnan(offers.lat) | np.isnan(offers.lon))
    o_unknown_rows = np.flatnonzero(~o_known).astype(np.int64)
    o_known_rows = np.flatnonzero(o_known).astype(np.int64)
    tree = geo.RadiusIndex(offers.lat[o_known_rows], offers.lon[o_known_rows])
    n_known = ~(np.isnan(needs.lat) | np.isnan(needs.lon))
    all_offers = np.arange(offers.size, dtype=np.int64)
    unknown_needs = np.flatnonzero(~n_known).astype(np.int64)
    for start in range(0, len(unknown_needs), MAX_BLOCK_NEEDS):
        yield all_offers, unknown_needs[start : start + MAX_BLOCK_NEEDS]
    known = np.flatnonzero(n_known).astype(np.int64)
    cell_lat = np.floor(needs.lat[known] / GRID_DEG).astype(np.int64)
    cell_lon = np.floor(needs.lon[known] / GRID_DEG).astype(np.int64)
    order = np.lexsort((cell_lon, cell_lat))
    known, cell_lat, cell_lon = known[order], cell_lat[order], cell_lon[order]
    if len(known) == 0:
        return
    change = np.flatnonzero((np.diff(cell_lat) != 0) | (np.diff(cell_lon) != 0)) + 1
    bounds = np.concatenate([[0], change, [len(known)]])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        rows = known[a:b]
        lat0 = (cell_lat[a] + 0.5) * GRID_DEG
        lon0 = (cell_lon[a] + 0.5) * GRID_DEG
        half_diag = geo.haversine_km(lat0, lon0, lat0 + GRID_DEG / 2, lon0 + GRID_DEG / 2)
        for start in range(0, len(rows), MAX_BLOCK_NEEDS):
            chunk = rows[start : start + MAX_BLOCK_NEEDS]
            reach = float(np.max(needs.radius[chunk])) + half_diag + 1.0
            if math.isinf(reach):
                cand = all_offers
            else:
                near = o_known_rows[tree.query(lat0, lon0, reach)]
                cand = np.concatenate([near, o_unknown_rows]) if len(o_unknown_rows) else near
            if len(cand):
                yield np.sort(cand), chunk


def _top_k_groups(
    group: IntArray, other: IntArray, score: FloatArray, k: int
) -> Iterable[tuple[int, list[tuple[int, float]]]]:
    """For each value of ``group``, its ``k`` best (other, score), best first."""
    if len(group) == 0:
        return
    order = np.lexsort((other, -score, group))
    g = group[order]
    starts = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.concatenate([starts, [len(g)]])))
    keep = rank < k
    g, o, s = g[keep].tolist(), other[order][keep].tolist(), score[order][keep].tolist()
    current = -1
    bucket: list[tuple[int, float]] = []
    for gi, oi, si in zip(g, o, s, strict=True):
        if gi != current:
            if bucket:
                yield current, bucket
            current, bucket = gi, []
        bucket.append((oi, si))
    if bucket:
        yield current, bucket


def _merge_offer_tops(
    best_s: FloatArray, best_n: IntArray, o_rows: IntArray, n_rows: IntArray, s: FloatArray, k: int
) -> None:
    """Merge a block's pairs into the running top-k per offer (vectorised)."""
    if len(o_rows) == 0:
        return
    order = np.lexsort((n_rows, -s, o_rows))
    g, nn, ss = o_rows[order], n_rows[order], s[order]
    starts = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.concatenate([starts, [len(g)]])))
    keep = rank < k
    g, nn, ss, rank = g[keep], nn[keep], ss[keep], rank[keep]
    uniq = np.unique(g)
    new_s = np.full((len(uniq), k), -1.0)
    new_n = np.full((len(uniq), k), -1, dtype=np.int64)
    pos = np.searchsorted(uniq, g)
    new_s[pos, rank] = ss
    new_n[pos, rank] = nn
    cat_s = np.concatenate([best_s[uniq], new_s], axis=1)
    cat_n = np.concatenate([best_n[uniq], new_n], axis=1)
    # Best k by score, ties by need row (stable, deterministic).
    idx = np.lexsort((np.where(cat_n < 0, np.iinfo(np.int64).max, cat_n), -cat_s), axis=1)[:, :k]
    best_s[uniq] = np.take_along_axis(cat_s, idx, axis=1)
    best_n[uniq] = np.take_along_axis(cat_n, idx, axis=1)
