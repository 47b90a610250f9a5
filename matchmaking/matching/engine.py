"""The matching index: offers and needs, matched both ways, searched, and rematched in bulk.

``Index`` keeps, for each kind, its listings and their profiles as sparse matrices (see
``vectors``); profiles themselves are built a chunk at a time and let go (they take kilobytes
each), and built again to explain a match. A listing is matched against the opposite kind without
scoring everything: one sparse row × matrix product per word-and-code block yields the listings
sharing a feature with it, and the route classes (listings with the same valorisation routes and
sectors, see ``vectors.BlockTable``) that can reach ``MIN_SCORE`` add theirs; those beyond the
need's radius are dropped, then those that cannot be among the best (bounds from the material
relevance), and only the rest get their context and gates. Listings added or changed since the
last compaction sit in small matrices of their own; compaction stacks the live rows and those.

The full rematch works by geographic blocks: needs grouped by radius class, halved along their
longer extent while a block is too large (``MAX_BLOCK_CELLS``) or while halves cost less
(``BLOCK_OVERHEAD_CELLS``), each against the offers within reach of its needs (a BallTree query).
Every candidate of a need is in its block, so its top-k is final there; offers keep a running
top-k across blocks. Within a block (``_rematch_block``), the pairs sharing words or codes come
first; then, by route class, the best classes of each need; then only the pairs that can still
enter their need's or their offer's top-k: a need's (offer's) k-th best score is at least the
smallest of the maxima of k disjoint groups of its scored pairs (and of low bounds from the
relevance), an offer's also at least its running k-th best, and a pair's relevance bounds its
score. Blocks run on threads (numpy and scipy release the GIL in their loops), each with its own
buffers and running top-k per offer, merged at the end; the result is the same with any number of
threads, and the same as scoring every pair (``tests/matching/test_engine_fast.py``).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from threadpoolctl import threadpool_limits

from matchmaking.matching import geo, scoring
from matchmaking.matching.records import NEED, OFFER, Listing, opposite
from matchmaking.matching.scoring import (
    CONTEXT_SHARE,
    FEATURE_BLOCKS,
    MATERIAL_COMPONENTS,
    MIN_SCORE,
    Explanation,
    Profile,
    build_profile,
    context_components,
    context_fit,
    explain,
    final_score,
    finish_component,
    material_relevance,
)
from matchmaking.matching.text import seed_dir_pinned, vocabulary
from matchmaking.matching.vectors import (
    RELEVANCE_FLOOR,
    STRONG_BLOCKS,
    Attrs,
    BlockTable,
    FeatureSpace,
    Relevant,
    Scratch,
    SideMatrices,
    block_table,
    class_pairs,
    class_values,
    pair_block,
    pair_scores,
    prepare_blocks,
    row_chunks,
    score_block,
    stable_order,
    strong_pairs,
    surely_allowed,
)

Match = tuple[int, float, Explanation]
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

MAX_BLOCK_CELLS = 2_000_000  # needs × offers of one rematch block (about 20 MB of buffers each)
BLOCK_OVERHEAD_CELLS = 300_000  # what one more block costs, in cells: blocks are split while it pays
RADIUS_CLASS_STEP = 1.5  # needs whose radii are within this ratio are grouped together
WORKERS = max(1, min(2, os.cpu_count() or 1))  # threads of the full rematch


@dataclass
class _Side:
    kind: str
    listings: dict[int, Listing]  # every live listing of this kind
    matrices: SideMatrices  # the listings as of the last compaction (rows of removed ones dead)
    families: list[tuple[str, ...]]  # material families of each row
    transposed: dict[str, sparse.csr_matrix]
    row_of: dict[int, int]
    alive: NDArray[np.bool_]
    pending: dict[int, Profile]  # listings added or changed since, with their profiles
    version: int = 0  # changes whenever ``pending`` does
    pending_cache: tuple[int, list[int], SideMatrices] | None = field(default=None, repr=False)


# Profiles are built this many listings at a time, then only their matrices are kept (a profile
# takes kilobytes of Python objects; 200,000 of them would not fit the memory a worker has).
BUILD_CHUNK = 20_000


class Index:
    """Offers and needs, matched against each other.

    >>> index = Index.build(listings)
    >>> index.match(listing, k=10)      # [(other_id, score, explanation), ...] best first
    >>> index.rematch_all(k=10)         # {listing_id: [(other_id, score), ...]} for every listing
    >>> index.search("sciure", kind="offer", lat=48.4, lon=-0.2, radius_km=50)

    The index keeps the listings and their matrices; a listing's profile (``scoring.Profile``) is
    built again when a match is explained.
    """

    compact_min = 1_000
    compact_share = 0.05

    def __init__(self, listings: Iterable[Listing] = ()) -> None:
        self.space = FeatureSpace()
        by_kind: dict[str, dict[int, Listing]] = {OFFER: {}, NEED: {}}
        for listing in listings:
            by_kind[listing.kind][listing.id] = listing
        with _no_collection(), seed_dir_pinned():
            every = [x for side in by_kind.values() for x in side.values()]
            # The words to correct, looked up all at once (see ``Vocabulary.prefetch``).
            vocabulary().prefetch({t for x in every for t in (x.title, x.description, x.sector_label)})
            self._sides = {kind: self._side_of(kind, by_kind[kind]) for kind in (OFFER, NEED)}
            # The index keeps matrices, not what built them (let go before collection resumes:
            # the collector need not scan them first).
            scoring.release_words()

    @classmethod
    def build(cls, listings: Iterable[Listing]) -> Index:
        return cls(listings)

    # -- maintenance --------------------------------------------------------------------------
    def _side_of(self, kind: str, listings: dict[int, Listing]) -> _Side:
        """A side built from listings: profiles a chunk at a time, listings of the same words
        together (so that the profile cache serves them, then is let go)."""
        groups: dict[tuple[object, ...], list[Listing]] = {}
        for listing in listings.values():
            groups.setdefault(scoring.content_key(listing), []).append(listing)
        parts: list[SideMatrices] = []
        families: list[tuple[str, ...]] = []
        chunk: list[Profile] = []
        for group in groups.values():
            chunk.extend(build_profile(x) for x in group)
            if len(chunk) >= BUILD_CHUNK:
                parts.append(self._chunk_matrices(chunk, kind, families))
                chunk = []
        if chunk or not parts:
            parts.append(self._chunk_matrices(chunk, kind, families))
        return self._new_side(kind, listings, SideMatrices.concat(parts, kind), families)

    def _chunk_matrices(self, profiles: list[Profile], kind: str, families: list[tuple[str, ...]]) -> SideMatrices:
        mats = SideMatrices.build(profiles, self.space, kind=kind)
        families.extend(p.families for p in profiles)
        release_profile_cache()
        return mats

    def _new_side(
        self, kind: str, listings: dict[int, Listing], matrices: SideMatrices, families: list[tuple[str, ...]]
    ) -> _Side:
        return _Side(
            kind=kind,
            listings=listings,
            matrices=matrices,
            families=families,
            transposed={c: matrices.mats[c].T.tocsr() for c in FEATURE_BLOCKS},
            row_of=dict(zip(matrices.ids.tolist(), range(matrices.size), strict=True)),
            alive=np.ones(matrices.size, dtype=bool),
            pending={},
        )

    def _compacted(self, side: _Side) -> _Side:
        """The side with its matrices rebuilt: live rows, then the pending listings."""
        live = np.flatnonzero(side.alive).astype(np.int64)
        ids, pending = self._pending_matrices(side)
        matrices = SideMatrices.concat([side.matrices.take(live), pending], side.kind)
        families = [side.families[r] for r in live.tolist()] + [side.pending[i].families for i in ids]
        return self._new_side(side.kind, side.listings, matrices, families)

    def compact(self) -> None:
        """Rebuild the matrices of both kinds (done automatically when the buffer grows)."""
        for kind in (OFFER, NEED):
            side = self._sides[kind]
            if side.pending or not side.alive.all():
                with _no_collection():
                    self._sides[kind] = self._compacted(side)

    def _maybe_compact(self, side: _Side) -> None:
        limit = max(self.compact_min, int(self.compact_share * len(side.listings)))
        if len(side.pending) > limit:
            self._sides[side.kind] = self._compacted(side)

    def add(self, listing: Listing) -> None:
        """Add or replace a listing (an update is an add with the same id)."""
        for kind in (OFFER, NEED):
            if kind != listing.kind and listing.id in self._sides[kind].listings:
                self.remove(listing.id, kind)
        side = self._sides[listing.kind]
        side.listings[listing.id] = listing
        side.pending[listing.id] = build_profile(listing)
        row = side.row_of.get(listing.id)
        if row is not None:
            side.alive[row] = False
        side.version += 1
        self._maybe_compact(side)

    update = add

    def remove(self, listing_id: int, kind: str | None = None) -> None:
        for k in (kind,) if kind else (OFFER, NEED):
            side = self._sides[k]
            if listing_id in side.listings:
                del side.listings[listing_id]
                if side.pending.pop(listing_id, None) is not None:
                    side.version += 1
                row = side.row_of.get(listing_id)
                if row is not None:
                    side.alive[row] = False

    def __len__(self) -> int:
        return sum(len(s.listings) for s in self._sides.values())

    def __contains__(self, listing_id: object) -> bool:
        return any(listing_id in s.listings for s in self._sides.values())

    def get(self, listing_id: int) -> Listing | None:
        for side in self._sides.values():
            listing = side.listings.get(listing_id)
            if listing is not None:
                return listing
        return None

    def ids(self, kind: str) -> list[int]:
        return list(self._sides[kind].listings)

    def _profile(self, side: _Side, listing_id: int) -> Profile:
        profile = side.pending.get(listing_id)
        return profile if profile is not None else build_profile(side.listings[listing_id])

    def _families(self, side: _Side, listing_id: int) -> tuple[str, ...]:
        profile = side.pending.get(listing_id)
        return profile.families if profile is not None else side.families[side.row_of[listing_id]]

    # -- one listing ----------------------------------------------------------------------------
    def _pending_matrices(self, side: _Side) -> tuple[list[int], SideMatrices]:
        cached = side.pending_cache
        if cached is not None and cached[0] == side.version:
            return cached[1], cached[2]
        ids = sorted(side.pending)
        mats = SideMatrices.build([side.pending[i] for i in ids], self.space, kind=side.kind)
        side.pending_cache = (side.version, ids, mats)
        return ids, mats

    def _query_main(
        self, query: Profile, qm: SideMatrices, side: _Side, best: int | None = None
    ) -> tuple[IntArray, FloatArray, dict[str, FloatArray]]:
        """Live rows of ``side``'s main matrices scoring at least ``MIN_SCORE`` with ``query``:
        those sharing a word or a code (one sparse product per block, against the transposed
        matrices) and those of a route class that can reach it (``vectors.class_values``). With
        ``best``, only the pairs that may be among the ``best`` best (ties included)."""
        mats = side.matrices
        n = mats.size
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0), {c: np.zeros(0) for c in MATERIAL_COMPONENTS})
        if n == 0:
            return empty
        parts: dict[str, tuple[NDArray[np.int32], FloatArray]] = {}
        for comp in STRONG_BLOCKS:
            mt = side.transposed[comp]
            q = qm.mats[comp]
            if q.nnz == 0:
                continue
            if q.shape[1] > mt.shape[0]:  # features the main matrices do not have
                q = q[:, : mt.shape[0]]
            elif q.shape[1] < mt.shape[0]:
                q = sparse.csr_matrix((q.data, q.indices, q.indptr), shape=(1, mt.shape[0]))
            prod = q @ mt
            if prod.nnz:
                parts[comp] = (prod.indices, prod.data)
        route, relevance = class_values(mats, qm)
        of_row, _, _ = mats.classes()
        by_class, start = mats.class_members()
        hit = np.zeros(n, dtype=bool)
        for idx, _data in parts.values():
            hit[idx] = True
        for g in np.flatnonzero(relevance >= RELEVANCE_FLOOR).tolist():
            hit[by_class[start[g] : start[g + 1]]] = True
        hit &= side.alive
        rows = np.flatnonzero(hit).astype(np.int64)
        # Within the need's radius (unknown sites pass).
        inside = np.ones(len(rows), dtype=bool)
        if qm.located[0] and len(rows):
            dots = qm.xyz[:, 0] @ mats.xyz[:, rows]
            unknown = ~mats.located[rows]
            near = (dots >= (qm.cos_reach[0] if query.kind == NEED else mats.cos_reach[rows])) | unknown
            inside = (dots >= (qm.cos_inside[0] if query.kind == NEED else mats.cos_inside[rows])) | unknown
            rows, inside = rows[near], inside[near]
        if len(rows) == 0:
            return empty
        values = np.zeros(n)
        raw: dict[str, FloatArray] = {}
        for comp in STRONG_BLOCKS:
            if comp in parts:
                idx, data = parts[comp]
                values[idx] = data
                raw[comp] = finish_component(comp, values[rows])
                values[idx] = 0.0
            else:
                raw[comp] = np.zeros(len(rows))
        raw["route"] = route[of_row[rows]]
        rel = material_relevance(raw)
        keep = np.flatnonzero(rel >= RELEVANCE_FLOOR)
        rows, rel = rows[keep], rel[keep]
        zeros = np.zeros(len(rows), dtype=np.int64)
        if best is not None and len(rows) > best:
            # The best-th best score is at least the best-th best low bound (see ``_LOW``).
            if query.kind == NEED:
                sure = surely_allowed(mats, rows, qm, zeros, inside[keep])
            else:
                sure = surely_allowed(qm, zeros, mats, rows, inside[keep])
            low = np.where(sure, rel * _LOW, 0.0)
            floor = np.partition(low, len(low) - best)[len(low) - best]
            may = np.flatnonzero(rel * _HIGH >= floor)
            rows, rel, keep, zeros = rows[may], rel[may], keep[may], zeros[may]
        if query.kind == NEED:
            score = pair_scores(mats, rows, qm, zeros, rel)
        else:
            score = pair_scores(qm, zeros, mats, rows, rel)
        ok = np.flatnonzero(score >= MIN_SCORE)
        return rows[ok], score[ok], {c: raw[c][keep[ok]] for c in MATERIAL_COMPONENTS}

    def _score_against(
        self, query: Profile, side: _Side, best: int | None = None
    ) -> tuple[IntArray, FloatArray, dict[str, FloatArray]]:
        """(ids, scores, material components) of the live listings of ``side`` scoring at least
        ``MIN_SCORE`` with ``query`` (with ``best``: at least all that may be among the best)."""
        if side.pending:
            p_ids, p_mats = self._pending_matrices(side)  # first: the space then knows their features
        qm = SideMatrices.build([query], self.space, kind=query.kind, grow=False)
        rows, scores, raw = self._query_main(query, qm, side, best)
        ids = side.matrices.ids[rows]
        if side.pending and p_ids:
            everyone = np.arange(len(p_ids), dtype=np.int64)
            one = np.zeros(1, dtype=np.int64)
            if query.kind == NEED:
                b = score_block(p_mats, everyone, qm, one, with_raw=True)
                p_rows = b.offer_pos
            else:
                b = score_block(qm, one, p_mats, everyone, with_raw=True)
                p_rows = b.need_pos
            if len(p_rows):
                assert b.raw is not None
                ids = np.concatenate([ids, np.array(p_ids, dtype=np.int64)[p_rows]])
                scores = np.concatenate([scores, b.score])
                raw = {c: np.concatenate([raw[c], b.raw[c]]) for c in MATERIAL_COMPONENTS}
        return ids, scores, raw

    def _chosen(
        self,
        query: Profile,
        side: _Side,
        limit: int,
        family: str | None = None,
        radius_km: float | None = None,
        exclude: Collection[int] = (),
    ) -> Iterator[tuple[int, float, dict[str, float]]]:
        """(other_id, score, material components) of the first ``limit`` listings of ``side`` for
        ``query``, best first (ties: the smaller id first), keeping those of ``family`` and within
        ``radius_km`` (as the explanation rounds the distance) if given, and not in ``exclude``."""
        ids, scores, raw = self._score_against(query, side, limit)
        cand = np.flatnonzero(scores >= MIN_SCORE)
        if len(cand) > limit:
            # The best, and every pair tied with the last of them (ties go to the smaller id).
            kth = np.partition(scores[cand], len(cand) - limit)[len(cand) - limit]
            cand = cand[scores[cand] >= kth]
        order = np.lexsort((ids[cand], -scores[cand]))
        for j in cand[order][:limit]:
            other_id = int(ids[j])
            # Filters before any explanation: explaining a pair costs far more than these tests.
            if other_id in exclude or (family and family not in self._families(side, other_id)):
                continue
            if radius_km is not None and not _within(query.listing, side.listings[other_id], radius_km):
                continue
            yield other_id, float(scores[j]), {c: float(raw[c][j]) for c in MATERIAL_COMPONENTS}

    def _explained(self, query: Profile, side: _Side, other_id: int, mraw: dict[str, float]) -> Match:
        other = self._profile(side, other_id)
        offer, need = (query, other) if query.kind == OFFER else (other, query)
        expl = explain(offer, need, mraw)
        return other_id, expl.score, expl

    def _top(self, query: Profile, side: _Side, k: int) -> list[Match]:
        """The ``k`` best listings of ``side`` for ``query``, explained."""
        return [self._explained(query, side, i, mraw) for i, _s, mraw in self._chosen(query, side, k)]

    def match(self, listing: Listing, k: int = 10) -> list[Match]:
        """The ``k`` best listings of the opposite kind for ``listing`` (indexed or not)."""
        side = self._sides[opposite(listing.kind)]
        with seed_dir_pinned():  # its profile and each explanation read the seed settings often
            return self._top(build_profile(listing), side, k)

    def explain(self, offer_id: int, need_id: int) -> Explanation:
        offer = self._profile(self._sides[OFFER], offer_id)
        need = self._profile(self._sides[NEED], need_id)
        return explain(offer, need)

    def search(
        self,
        query_text: str,
        kind: str | None = OFFER,
        lat: float | None = None,
        lon: float | None = None,
        radius_km: float | None = None,
        family: str | None = None,
        k: int = 10,
        exclude: Collection[int] = (),
    ) -> list[Match]:
        """Listings of ``kind`` (both kinds if None) that best answer ``query_text`` (a buyer
        searching offers, or a seller searching needs), within ``radius_km`` of (lat, lon) and of
        ``family`` if given, leaving out the ids in ``exclude`` (the searcher's own listings)."""
        # Filtered, the candidates are taken among the best max(5k, 50) (and the excluded).
        limit = max(k * 5, 50) + len(exclude) if (family or radius_km or exclude) else k
        found: list[tuple[float, int, Profile, _Side, dict[str, float]]] = []
        for wanted in (kind,) if kind else (OFFER, NEED):
            probe = Listing(id=-1, kind=opposite(wanted), title=query_text, family=family, lat=lat, lon=lon,
                            radius_km=radius_km, accepts_hazardous=True)
            query, side = build_profile(probe), self._sides[wanted]
            chosen = itertools.islice(self._chosen(query, side, limit, family, radius_km, exclude), k)
            found.extend((score, other_id, query, side, mraw) for other_id, score, mraw in chosen)
        found.sort(key=lambda f: (-f[0], f[1]))
        # Only what is returned is explained.
        return [self._explained(query, side, other_id, mraw) for _s, other_id, query, side, mraw in found[:k]]

    # -- everything -----------------------------------------------------------------------------
    def rematch_all(self, k: int = 10, workers: int | None = None) -> Rematch:
        """Top-``k`` (other_id, score) for every listing of both kinds, best first (ties: the
        smaller id first), as a read-only mapping ``{listing_id: [(other_id, score), ...]}``."""
        self.compact()
        offers = self._sides[OFFER].matrices
        needs = self._sides[NEED].matrices
        need_top = _TopK(needs.size, k, offers.ids)
        prepare_blocks(offers, needs)
        # Blocks are planned as the threads take them: a thread plans the next block while the
        # other works (a thousand blocks: the last one taken hardly delays the end).
        blocks = _blocks(offers, needs)
        n_workers = max(1, WORKERS if workers is None else workers)
        lock = threading.Lock()

        def run() -> _TopK:
            offer_top = _TopK(offers.size, k, needs.ids)
            scratch = Scratch()
            while True:
                with lock:
                    block = next(blocks, None)
                if block is None:
                    return offer_top
                oi, ni = block
                _rematch_block(offers, oi, needs, ni, k, scratch, need_top, offer_top)

        with _no_collection(), threadpool_limits(limits=1):
            tops = self._run_blocks(run, n_workers)
        offer_top = tops[0]
        for other in tops[1:]:
            offer_top.merge_rows(np.arange(offers.size, dtype=np.int64), other.score, other.other)
        return Rematch(
            np.concatenate([needs.ids, offers.ids]),
            np.concatenate([need_top.other_ids(offers.ids), offer_top.other_ids(needs.ids)]),
            np.concatenate([need_top.score, offer_top.score]),
        )

    @staticmethod
    def _run_blocks(run: Callable[[], _TopK], n_workers: int) -> list[_TopK]:
        if n_workers == 1:
            return [run()]
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            return [f.result() for f in [pool.submit(run) for _ in range(n_workers)]]

    def exhaustive_top(self, listing_id: int, k: int = 10) -> list[tuple[int, float]]:
        """Top-k by scoring every listing of the opposite kind (reference for recall checks)."""
        self.compact()
        for kind in (OFFER, NEED):
            side = self._sides[kind]
            if listing_id in side.listings:
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


def _within(query: Listing, other: Listing, radius_km: float) -> bool:
    """Whether ``other`` is within ``radius_km`` of ``query`` as the explanation says (its distance
    from the offer to the need, rounded to 100 m); unknown places are not excluded."""
    km = scoring.pair_km(*((query, other) if query.kind == OFFER else (other, query)))
    return math.isnan(km) or round(km, 1) <= radius_km


def release_profile_cache() -> None:
    """Let go of the cached profile contents (``scoring``): the index keeps matrices, not
    profiles; what a match explains is built again."""
    scoring._content.cache_clear()


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """No cyclic garbage collection inside: building profiles or results makes millions of small
    objects, and each collection would scan all of them (and every profile) for nothing."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


# ---------------------------------------------------------------------------------------------
# The full rematch
# ---------------------------------------------------------------------------------------------

_NO_KEY = np.iinfo(np.int64).max


class _TopK:
    """The ``k`` best (score, other row) of each of ``n`` listings, best first, ties by the
    other's id (``other_ids``); empty slots hold score -1, row -1."""

    def __init__(self, n: int, k: int, other_ids: IntArray) -> None:
        self.k = k
        self.score = np.full((n, k), -1.0)
        self.other = np.full((n, k), -1, dtype=np.int32)
        self._other_ids = other_ids

    def threshold(self, rows: IntArray) -> FloatArray:
        """The score a new pair of each row must reach to possibly enter its top-k."""
        result: FloatArray = self.score[rows, self.k - 1]
        return result

    def merge_rows(self, rows: IntArray, score: FloatArray, other: NDArray[np.integer]) -> None:
        """Merge (len(rows), m) candidates, sorted or not, into the rows' top-k (rows unique)."""
        cat_s = np.concatenate([self.score[rows], score], axis=1)
        cat_o = np.concatenate([self.other[rows], other.astype(np.int32)], axis=1)
        cat_k = np.where(cat_o >= 0, self._other_ids[np.maximum(cat_o, 0)], _NO_KEY)
        idx = np.lexsort((cat_k, -cat_s), axis=1)[:, : self.k]
        self.score[rows] = np.take_along_axis(cat_s, idx, axis=1)
        self.other[rows] = np.take_along_axis(cat_o, idx, axis=1)

    def other_ids(self, other_ids: IntArray) -> IntArray:
        """The ids of the others (-1 in empty slots)."""
        result: IntArray = np.where(self.other >= 0, other_ids[np.maximum(self.other, 0)], -1)
        return result


class Rematch(Mapping[int, list[tuple[int, float]]]):
    """``{listing_id: [(other_id, score), ...]}`` over compact arrays: each list is made when read
    (two million tuples would take hundreds of megabytes)."""

    def __init__(self, ids: IntArray, others: IntArray, scores: FloatArray) -> None:
        order = np.argsort(ids, kind="stable")
        self._ids = ids[order]
        self._others = others[order]
        self._scores = scores[order]
        self._counts = (self._others >= 0).sum(axis=1)

    def _row(self, listing_id: object) -> int | None:
        if not isinstance(listing_id, (int, np.integer)) or len(self._ids) == 0:
            return None
        row = int(np.searchsorted(self._ids, listing_id))
        return row if row < len(self._ids) and self._ids[row] == listing_id else None

    def __getitem__(self, listing_id: int) -> list[tuple[int, float]]:
        row = self._row(listing_id)
        if row is None:
            raise KeyError(listing_id)
        n = int(self._counts[row])
        return list(zip(self._others[row, :n].tolist(), self._scores[row, :n].tolist(), strict=True))

    def __contains__(self, listing_id: object) -> bool:
        return self._row(listing_id) is not None

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids.tolist())

    def __len__(self) -> int:
        return len(self._ids)

    def pairs(self) -> int:
        """How many (listing, other) pairs in all."""
        return int(self._counts.sum())


def _group_floor(group: IntArray, value: FloatArray, k: int) -> FloatArray:
    """For each pair, a value its group's k-th largest ``value`` is sure to reach (``group``
    non-decreasing): the smallest of the maxima of k disjoint runs of the group's pairs, -inf for
    groups of at most k pairs."""
    n = len(group)
    if n == 0:
        return np.zeros(0)
    starts = np.flatnonzero(np.concatenate([[True], group[1:] != group[:-1]]))
    lengths = np.diff(np.append(starts, n))
    big = lengths > k
    floor = np.full(len(starts), -np.inf)
    if big.any():
        runs = np.where(big, k, 1)
        owner = np.repeat(np.arange(len(starts)), runs)
        first = np.cumsum(runs) - runs
        c = np.arange(len(owner)) - first[owner]
        bounds = starts[owner] + (c * lengths[owner]) // runs[owner]
        maxima = np.maximum.reduceat(value, bounds)
        floor[big] = maxima[big[owner]].reshape(-1, k).min(axis=1)
    result: FloatArray = np.repeat(floor, lengths)
    return result


def _column_floor(
    scratch: Scratch, row: IntArray, col: IntArray, value: FloatArray, nj: int, nc: int, k: int
) -> FloatArray:
    """For each column of an nj × nc grid holding ``value`` at (row, col), a value its k-th largest
    is sure to reach: the smallest of the maxima of k disjoint groups of rows (row mod k); -inf
    when there are fewer than k rows."""
    if nj < k:
        return np.full(nc, -np.inf)
    if len(value) * 8 < nj * nc:  # few pairs: their groups' maxima directly
        maxima = np.full(k * nc, -np.inf)
        np.maximum.at(maxima, (row % k) * nc + col, value)  # flat: ``at``'s fast path
        out: FloatArray = maxima.reshape(k, nc).min(axis=0)
        return out
    grid = scratch.zero_grid(nj * nc)
    flat = row * nc + col
    grid[flat] = value
    maxima = grid.reshape(nj, nc)[: (nj // k) * k].reshape(nj // k, k, nc).max(axis=0)
    grid[flat] = 0.0
    result: FloatArray = maxima.min(axis=0)
    return result


def _ranked(group: IntArray, score: FloatArray, key: IntArray, k: int) -> tuple[IntArray, IntArray]:
    """(positions, rank) of the ``k`` best of each group by score, ties by ``key``, sorted by group
    then rank."""
    # Groups as 16-bit integers when they fit: lexsort's stable sort of them is a radix sort.
    small = group.astype(np.int16) if len(group) and int(group.max()) < 2**15 else group
    order = np.lexsort((key, -score, small))
    g = group[order]
    starts = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.append(starts, len(g))))
    keep = rank < k
    return order[keep], rank[keep]


# Bounds of a pair's score from its material relevance r: at most r (the context factor is at most
# 1) and, when no gate can stop it, at least (1 - CONTEXT_SHARE) r; widened against rounding.
_HIGH = 1.0 + 1e-9
_LOW = (1.0 - CONTEXT_SHARE) * (1.0 - 1e-9)
# Pairs sharing only valorisation routes come in classes (see ``vectors.block_table``). For each
# need, those of the classes within this share of its best class are scored first; the others only
# if they can still enter the need's or the offer's top-k.
ROUTE_BAND = 0.9


@dataclass
class _Scored:
    """Scored pairs of a block (positions into ``ni`` and ``oi``), need-major."""

    need_pos: IntArray
    offer_pos: IntArray
    score: FloatArray

    @classmethod
    def concat(cls, parts: list[_Scored]) -> _Scored:
        need_pos = np.concatenate([p.need_pos for p in parts])
        order = stable_order(need_pos)
        return cls(
            need_pos[order],
            np.concatenate([p.offer_pos for p in parts])[order],
            np.concatenate([p.score for p in parts])[order],
        )


def _scored(offers: Attrs, needs: Attrs, rel: Relevant) -> _Scored:
    score = pair_scores(offers, rel.offer_pos, needs, rel.need_pos, rel.relevance)
    ok = np.flatnonzero(score >= MIN_SCORE)
    return _Scored(rel.need_pos[ok], rel.offer_pos[ok], score[ok])


# Pairs of one class pass generated at once (bounds the memory a block takes).
_PAIRS_AT_ONCE = 400_000


def _by_need_class(
    offers: SideMatrices,
    oi: IntArray,
    needs: SideMatrices,
    ni: IntArray,
    table: BlockTable,
    scratch: Scratch,
    takes: NDArray[np.bool_],
    oa: Attrs,
    na: Attrs,
) -> list[_Scored]:
    """Scored pairs of the offer classes each need takes, a run of needs at a time."""
    sizes = np.diff(table.offer_class_start)
    return [
        _scored(oa, na, class_pairs(offers, oi, needs, ni, table, scratch, takes[rows], rows=rows))
        for rows in row_chunks(takes, sizes, _PAIRS_AT_ONCE)
    ]


def _need_floor(scored: _Scored, nj: int, k: int) -> FloatArray:
    """For each need position, a score its k-th best is sure to reach (-inf if unknown)."""
    out = np.full(nj, -np.inf)
    if len(scored.score):
        floor = _group_floor(scored.need_pos, scored.score, k)
        out[scored.need_pos] = floor  # one value per need
    return out


def _rematch_block(
    offers: SideMatrices,
    oi: IntArray,
    needs: SideMatrices,
    ni: IntArray,
    k: int,
    scratch: Scratch,
    need_top: _TopK,
    offer_top: _TopK,
) -> None:
    nj, nc = len(ni), len(oi)
    oa, na = Attrs.of(offers, oi), Attrs.of(needs, ni)
    table = block_table(offers, oi, needs, ni)
    strong, marked = strong_pairs(offers, oi, needs, ni, table, scratch)
    try:
        # A pair is scored only if it may enter its need's top-k or its offer's. A need's k-th best
        # is at least the floor (``_group_floor``) of the low bounds of its pairs (every candidate
        # of a need is in this block); an offer's, at least that floor over this block's needs and
        # at least its running k-th best. A pair's relevance bounds its score from above.
        sure = surely_allowed(oa, strong.offer_pos, na, strong.need_pos, strong.inside)
        low = np.where(sure, strong.relevance * _LOW, 0.0)
        high = strong.relevance * _HIGH
        low_floor = _group_floor(strong.need_pos, low, k)
        low_need_floor = np.full(nj, -np.inf)
        low_need_floor[strong.need_pos] = low_floor
        low_offer_floor = np.maximum(
            offer_top.threshold(oi), _column_floor(scratch, strong.need_pos, strong.offer_pos, low, nj, nc, k)
        )
        live = np.flatnonzero((high >= low_floor) | (high >= low_offer_floor[strong.offer_pos]))
        parts = [_scored(oa, na, strong.take(live))]
        # Pairs sharing only routes: by class, the best classes of each need first.
        by_need = table.relevance[:, table.gn].T  # needs × offer classes
        usable = by_need >= RELEVANCE_FLOOR
        need_floor = np.maximum(_need_floor(parts[0], nj, k), low_need_floor)
        band = np.maximum(ROUTE_BAND * by_need.max(axis=1, initial=0.0), need_floor / _HIGH)
        first = usable & (by_need >= band[:, None])
        parts.extend(_by_need_class(offers, oi, needs, ni, table, scratch, first, oa, na))
        so_far = _Scored.concat(parts)
        need_floor = np.maximum(_need_floor(so_far, nj, k), low_need_floor)
        offer_floor = np.maximum(
            low_offer_floor, _column_floor(scratch, so_far.need_pos, so_far.offer_pos, so_far.score, nj, nc, k)
        )
        then = usable & ~first & (by_need * _HIGH >= need_floor[:, None])
        parts.extend(_by_need_class(offers, oi, needs, ni, table, scratch, then, oa, na))
        # Offers whose floor their best class of needs can reach (most cannot).
        reachable = np.flatnonzero(table.relevance.max(axis=1, initial=0.0)[table.go] * _HIGH >= offer_floor)
        by_offer = table.relevance[table.go[reachable], :]  # those offers × need classes
        wanted = (by_offer >= RELEVANCE_FLOOR) & (by_offer * _HIGH >= offer_floor[reachable, None])
        sizes = np.diff(table.need_class_start)
        for chunk in row_chunks(wanted, sizes, _PAIRS_AT_ONCE):
            more = class_pairs(
                offers, oi, needs, ni, table, scratch, offer_classes=wanted[chunk], rows=reachable[chunk]
            )
            # Only the pairs the two passes above did not take.
            g = table.go[more.offer_pos]
            done = first[more.need_pos, g] | then[more.need_pos, g]
            parts.append(_scored(oa, na, more.take(np.flatnonzero(~done))))
    finally:
        scratch.clear(marked)
    b = _Scored.concat(parts)
    if len(b.score) == 0:
        return
    score, need_pos, offer_pos = b.score, b.need_pos, b.offer_pos
    o_rows, n_rows = oi[offer_pos], ni[need_pos]
    # Needs: every candidate of these needs is in this block, so their top-k is final.
    sel = np.flatnonzero(score >= _group_floor(need_pos, score, k))
    sel = sel[score[sel] >= _group_floor(need_pos[sel], score[sel], k)]
    o_keys = offers.ids[o_rows[sel]]
    pos, rank = _ranked(need_pos[sel], score[sel], o_keys, k)
    pick = sel[pos]
    rows = n_rows[pick]
    need_top.score[rows, rank] = score[pick]
    need_top.other[rows, rank] = o_rows[pick]
    # Offers: merged into their running top-k.
    floor = np.maximum(offer_top.threshold(oi), _column_floor(scratch, need_pos, offer_pos, score, nj, nc, k))
    sel = np.flatnonzero(score >= floor[offer_pos])
    if len(sel) == 0:
        return
    n_keys = needs.ids[n_rows[sel]]
    pos, rank = _ranked(offer_pos[sel], score[sel], n_keys, k)
    touched, slot = np.unique(offer_pos[sel[pos]], return_inverse=True)
    width = int(rank.max()) + 1  # most offers get one or two new pairs from a block
    new_s = np.full((len(touched), width), -1.0)
    new_o = np.full((len(touched), width), -1, dtype=np.int64)
    new_s[slot, rank] = score[sel[pos]]
    new_o[slot, rank] = n_rows[sel[pos]]
    offer_top.merge_rows(oi[touched], new_s, new_o)


def _blocks(offers: SideMatrices, needs: SideMatrices) -> Iterator[tuple[IntArray, IntArray]]:
    """(offer rows, need rows) blocks covering every pair that can pass the radius gate: each need
    in exactly one block, with every offer within its radius (and every offer of unknown site)."""
    if needs.size == 0 or offers.size == 0:
        return
    o_unknown_rows = np.flatnonzero(~offers.located).astype(np.int64)
    o_known_rows = np.flatnonzero(offers.located).astype(np.int64)
    tree = geo.RadiusIndex(offers.lat[o_known_rows], offers.lon[o_known_rows])
    all_offers = np.arange(offers.size, dtype=np.int64)
    unknown_needs = np.flatnonzero(~needs.located).astype(np.int64)
    step = max(1, MAX_BLOCK_CELLS // offers.size)
    for start in range(0, len(unknown_needs), step):
        yield all_offers, unknown_needs[start : start + step]
    known = np.flatnonzero(needs.located).astype(np.int64)
    if len(known) == 0:
        return
    radius = needs.radius[known]
    cls = np.round(np.log(np.maximum(radius, 1e-3)) / math.log(RADIUS_CLASS_STEP)).astype(np.int64)
    lat = np.radians(needs.lat[known])
    y = geo.EARTH_RADIUS_KM * lat
    x = geo.EARTH_RADIUS_KM * np.radians(needs.lon[known]) * np.cos(lat)
    reach = _Reach(needs, offers, tree, o_known_rows, o_unknown_rows)
    for c in np.unique(cls):
        w = np.flatnonzero(cls == c)
        yield from _split(reach, known[w], x[w], y[w])


@dataclass
class _Reach:
    """The offers within reach of a group of needs."""

    needs: SideMatrices
    offers: SideMatrices
    tree: geo.RadiusIndex
    known_rows: IntArray
    unknown_rows: IntArray

    def __call__(self, rows: IntArray, within: IntArray | None = None) -> IntArray:
        """Offers that may be within the radius of a need of ``rows``; with ``within`` (the offers
        in reach of a group holding ``rows``), taken among those."""
        lat = self.needs.lat[rows]
        lon = self.needs.lon[rows]
        lat0 = float((lat.min() + lat.max()) / 2)
        lon0 = float((lon.min() + lon.max()) / 2)
        # Any offer within a need's radius is within (radius + the need's distance) of the centre.
        off = geo.haversine_km_arrays(lat, lon, np.full_like(lat, lat0), np.full_like(lon, lon0))
        reach = float(np.max(self.needs.radius[rows] + off)) + 0.01
        if within is None:
            near = self.known_rows[self.tree.query(lat0, lon0, reach)]
            cand = np.concatenate([near, self.unknown_rows]) if len(self.unknown_rows) else near
            result: IntArray = np.sort(cand).astype(np.int64)
            return result
        centre = geo.unit_vectors(np.array([lat0]), np.array([lon0]))[:, 0]
        cos = geo.cos_reach(np.array([reach]), np.array([True]))[0]
        keep = (centre @ np.take(self.offers.xyz, within, axis=1) >= cos) | ~self.offers.located[within]
        kept: IntArray = within[keep]
        return kept


def _split(
    reach: _Reach, rows: IntArray, x: FloatArray, y: FloatArray, cand: IntArray | None = None
) -> Iterator[tuple[IntArray, IntArray]]:
    """Blocks for the needs ``rows`` (planar positions x, y, offers in reach ``cand``): halved along
    their longer extent while a block is too large or the halves cost less (in cells, counting
    ``BLOCK_OVERHEAD_CELLS`` for each block)."""
    if cand is None:
        cand = reach(rows)
    if len(cand) == 0:
        return
    cells = len(rows) * len(cand)
    if len(rows) > 1 and cells > BLOCK_OVERHEAD_CELLS // 4:
        axis = x if np.ptp(x) >= np.ptp(y) else y
        order = np.argsort(axis, kind="stable")
        halves = (order[: len(rows) // 2], order[len(rows) // 2 :])
        cands = [reach(rows[h], cand) for h in halves]
        split_cost = sum(len(h) * len(c) + BLOCK_OVERHEAD_CELLS for h, c in zip(halves, cands, strict=True))
        if cells > MAX_BLOCK_CELLS or split_cost < cells + BLOCK_OVERHEAD_CELLS:
            for h, c in zip(halves, cands, strict=True):
                yield from _split(reach, rows[h], x[h], y[h], c)
            return
    yield cand, rows
