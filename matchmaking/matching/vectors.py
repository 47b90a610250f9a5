"""Profiles as sparse matrices, and the vectorised scoring of blocks of pairs.

Each material component is a sum of products of per-listing features (see ``scoring``), so a
block of offers × needs is scored with one sparse matrix product per component; only pairs that
share at least one feature come out, which is exactly the set of pairs whose score can be above 0.

The engine's kernels split the blocks in two. Words and codes (``STRONG_BLOCKS``) differ from
listing to listing: one sparse product covers the three (``strong_pairs``), its entries marked on
a grid of needs × offers. Valorisation routes and sectors come in few distinct profiles: listings
sharing both form a class, and a block's classes are compared once (``block_table``), so a pair
sharing only routes takes its relevance from a small table (``class_pairs``). Either way pairs
beyond the need's radius are dropped before any value is read (a dot product of unit vectors),
then pairs whose material relevance alone is under ``MIN_SCORE`` (the context can only lower it),
and only the rest get their context (``pair_scores``, the arithmetic of ``scoring``).
``score_block`` scores every pair of a block this way; ``pair_block`` does it the plain way, one
product per block; the evaluation uses it, and the tests hold the two to the same scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from matchmaking.matching import geo, quantities
from matchmaking.matching.records import NEED
from matchmaking.matching.scoring import (
    CANDIDATE_BLOCKS,
    FEATURE_BLOCKS,
    MATERIAL_COMPONENTS,
    MIN_SCORE,
    POWER,
    ContextArrays,
    Profile,
    components_from_blocks,
    context_fit,
    final_score,
    finish_component,
    material_relevance,
    sector_known,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass
class FeatureSpace:
    """Column numbers of features, per feature block, shared by the offer and the need matrices."""

    columns: dict[str, dict[str, int]] = field(default_factory=lambda: {c: {} for c in FEATURE_BLOCKS})

    def width(self, component: str) -> int:
        return len(self.columns[component])

    def row(self, component: str, features: dict[str, float], grow: bool = True) -> tuple[list[int], list[float]]:
        cols = self.columns[component]
        idx: list[int] = []
        vals: list[float] = []
        for key, value in features.items():
            col = cols.get(key)
            if col is None:
                if not grow:
                    continue
                col = len(cols)
                cols[key] = col
            idx.append(col)
            vals.append(value)
        return idx, vals


def _widen(m: sparse.csr_matrix, width: int) -> sparse.csr_matrix:
    if m.shape[1] >= width:
        return m
    return sparse.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], width))


@dataclass
class SideMatrices:
    """The listings of one kind as matrices and arrays, row ``i`` being ``profiles[i]``."""

    kind: str
    ids: IntArray
    mats: dict[str, sparse.csr_matrix]
    lat: FloatArray
    lon: FloatArray
    radius: FloatArray  # needs: the hard limit in km; offers: +inf
    hazardous: NDArray[np.bool_]
    accepts: NDArray[np.bool_]
    annual: FloatArray
    lot: FloatArray
    freq: NDArray[np.int8]
    avail_from: FloatArray
    avail_until: FloatArray
    sector_known: NDArray[np.bool_]  # the listing has sector features (see scoring.sector_known)
    forbids: IntArray  # offers: bits of the law's rules they fall under (``law``); needs: 0
    uses: IntArray  # needs: bits of the law's rules whose uses they name; offers: 0
    # Derived for ``score_block``: unit vectors of the sites ((3, n), 0 where unknown), whether a site is
    # known, the cosine of the radius a little wider and a little narrower (-2 where the site is
    # unknown), the most one delivery can carry (annual tonnes, else the lot), whether any date is
    # set.
    xyz: FloatArray = field(init=False, repr=False)
    located: NDArray[np.bool_] = field(init=False, repr=False)
    cos_reach: FloatArray = field(init=False, repr=False)
    cos_inside: FloatArray = field(init=False, repr=False)
    supply: FloatArray = field(init=False, repr=False)
    dated: NDArray[np.bool_] = field(init=False, repr=False)
    _combined: dict[tuple[str, tuple[str, ...], tuple[int, ...]], sparse.csr_matrix] = field(
        init=False, repr=False, default_factory=dict
    )
    _profiles: dict[str, tuple[IntArray, sparse.csr_matrix]] = field(init=False, repr=False, default_factory=dict)
    _classes: tuple[IntArray, IntArray, IntArray] | None = field(init=False, repr=False, default=None)
    _members: tuple[IntArray, IntArray] | None = field(init=False, repr=False, default=None)
    _class_rows: dict[str, sparse.csr_matrix] = field(init=False, repr=False, default_factory=dict)
    _pair_tables: tuple[SideMatrices, ProfileTables] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self.located = ~(np.isnan(self.lat) | np.isnan(self.lon))
        self.xyz = geo.unit_vectors(self.lat, self.lon)
        self.cos_reach = geo.cos_reach(self.radius, self.located)
        self.cos_inside = geo.cos_reach(self.radius, self.located, inside=True)
        self.supply = np.where(np.isnan(self.annual), self.lot, self.annual)
        self.dated = np.isfinite(self.avail_from) | np.isfinite(self.avail_until)

    @property
    def size(self) -> int:
        return len(self.ids)

    _ROW_ARRAYS = (
        "ids",
        "lat",
        "lon",
        "radius",
        "hazardous",
        "accepts",
        "annual",
        "lot",
        "freq",
        "avail_from",
        "avail_until",
        "sector_known",
        "forbids",
        "uses",
    )

    def take(self, rows: IntArray) -> SideMatrices:
        """The listings of ``rows``, in that order."""
        arrays = {name: getattr(self, name)[rows] for name in self._ROW_ARRAYS}
        return SideMatrices(kind=self.kind, mats={c: m[rows] for c, m in self.mats.items()}, **arrays)

    @classmethod
    def concat(cls, parts: Sequence[SideMatrices], kind: str) -> SideMatrices:
        """The listings of all parts, in order (matrices of one feature space, widened alike)."""
        if not parts:
            return cls.build([], kind=kind)
        mats = {}
        for comp in FEATURE_BLOCKS:
            width = max(p.mats[comp].shape[1] for p in parts)
            mats[comp] = sparse.vstack([_widen(p.mats[comp], width) for p in parts], format="csr")
        arrays = {name: np.concatenate([getattr(p, name) for p in parts]) for name in cls._ROW_ARRAYS}
        return cls(kind=kind, mats=mats, **arrays)

    def stacked(self, offsets: tuple[int, ...], blocks: tuple[str, ...]) -> sparse.csr_matrix:
        """The ``blocks`` side by side (block ``j`` at columns ``offsets[j]``…), one row per
        listing, in the blocks' own column order within a row."""
        cached = self._combined.get(("stacked", blocks, offsets))
        if cached is None:
            parts = [_widen(self.mats[c], offsets[j + 1] - offsets[j]) for j, c in enumerate(blocks)]
            cached = sparse.hstack(parts, format="csr")
            self._combined[("stacked", blocks, offsets)] = cached
        return cached

    def spread(self, offsets: tuple[int, ...], blocks: tuple[str, ...]) -> sparse.csr_matrix:
        """Row ``j * size + i``: block ``blocks[j]`` of listing ``i`` at columns ``offsets[j]``…"""
        cached = self._combined.get(("spread", blocks, offsets))
        if cached is None:
            parts = [
                sparse.csr_matrix((m.data, m.indices + offsets[j], m.indptr), shape=(self.size, offsets[-1]))
                for j, m in enumerate(self.mats[c] for c in blocks)
            ]
            cached = sparse.vstack(parts, format="csr")
            self._combined[("spread", blocks, offsets)] = cached
        return cached

    def profiles(self, block: str) -> tuple[IntArray, sparse.csr_matrix]:
        """(profile number of each row, one row per distinct profile) of a feature block. Rows are
        the same profile when they hold the same features in the same order (so that their sums
        of products are summed alike)."""
        cached = self._profiles.get(block)
        if cached is None:
            m = self.mats[block]
            lengths = np.diff(m.indptr)
            width = int(lengths.max()) if len(lengths) else 0
            if width == 0:
                cached = (np.zeros(self.size, dtype=np.int64), sparse.csr_matrix((1, m.shape[1])))
            else:
                number: dict[bytes, int] = {}
                first: list[int] = []
                ids = np.empty(self.size, dtype=np.int64)
                indptr = m.indptr.tolist()
                idx_bytes = m.indices.astype(np.int32).tobytes()
                val_bytes = m.data.astype(np.float64).tobytes()
                for i in range(self.size):
                    a, b = indptr[i], indptr[i + 1]
                    key = idx_bytes[4 * a : 4 * b] + val_bytes[8 * a : 8 * b]
                    found = number.get(key)
                    if found is None:
                        found = number[key] = len(first)
                        first.append(i)
                    ids[i] = found
                cached = (ids, m[np.array(first, dtype=np.int64)])
            self._profiles[block] = cached
        return cached

    def class_rows(self, block: str) -> sparse.csr_matrix:
        """The ``block`` (route or sector) profile of each class, one row per class."""
        cached = self._class_rows.get(block)
        if cached is None:
            _, route_of, sector_of = self.classes()
            _, rows = self.profiles(block)
            cached = self._class_rows[block] = rows[route_of if block == "route" else sector_of]
        return cached

    def class_members(self) -> tuple[IntArray, IntArray]:
        """(rows sorted by class, where each class starts in them; one more: the end)."""
        if self._members is None:
            of_row, route, _ = self.classes()
            self._members = _by_class(of_row, len(route))
        return self._members

    def classes(self) -> tuple[IntArray, IntArray, IntArray]:
        """(class of each row, route profile of each class, sector profile of each class): rows of
        a class share their route and sector profiles, so pairs sharing nothing else score alike."""
        if self._classes is None:
            route, _ = self.profiles("route")
            sector, sectors = self.profiles("sector")
            key = route * (sectors.shape[0] + 1) + sector
            _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            self._classes = (inverse.astype(np.int64).ravel(), route[first], sector[first])
        return self._classes

    @classmethod
    def build(
        cls,
        profiles: Sequence[Profile],
        space: FeatureSpace | None = None,
        kind: str | None = None,
        grow: bool = True,
    ) -> SideMatrices:
        """Matrices of ``profiles`` in ``space``; with ``grow=False`` features the space does not
        know are left out (no listing of the space has them) and the space is not changed."""
        space = space if space is not None else FeatureSpace()
        n = len(profiles)
        # Listings with the same words share their features: each distinct set is mapped once.
        number: dict[int, int] = {}
        distinct: list[dict[str, dict[str, float]]] = []
        which = np.empty(n, dtype=np.int64)
        for i, p in enumerate(profiles):
            found = number.get(id(p.features))
            if found is None:
                found = number[id(p.features)] = len(distinct)
                distinct.append(p.features)
            which[i] = found
        mats = {comp: _block_matrix([f[comp] for f in distinct], space, comp, grow)[which] for comp in FEATURE_BLOCKS}
        listings = [p.listing for p in profiles]

        def arr(values: list[float | None]) -> FloatArray:
            return np.array(values, dtype=np.float64)  # None: NaN

        the_kind = kind or (listings[0].kind if listings else NEED)
        radius = (
            np.array([geo.effective_radius(x.radius_km) for x in listings], dtype=np.float64)
            if the_kind == NEED
            else np.full(n, np.inf)
        )
        return cls(
            kind=the_kind,
            ids=np.array([x.id for x in listings], dtype=np.int64),
            mats=mats,
            lat=arr([x.lat for x in listings]),
            lon=arr([x.lon for x in listings]),
            radius=radius,
            hazardous=np.array([p.hazardous for p in profiles], dtype=bool),
            accepts=np.array([x.accepts_hazardous for x in listings], dtype=bool),
            annual=arr([p.annual_tonnes for p in profiles]),
            lot=arr([x.lot_tonnes for x in listings]),
            freq=np.array([p.frequency_code for p in profiles], dtype=np.int8),
            avail_from=np.array([p.from_ordinal for p in profiles], dtype=np.float64),
            avail_until=np.array([p.until_ordinal for p in profiles], dtype=np.float64),
            sector_known=np.array([sector_known(p) for p in profiles], dtype=bool),
            forbids=np.array([p.forbids for p in profiles], dtype=np.int64),
            uses=np.array([p.use_bits for p in profiles], dtype=np.int64),
        )


def _block_matrix(rows: Sequence[dict[str, float]], space: FeatureSpace, comp: str, grow: bool) -> sparse.csr_matrix:
    """One feature block of listings as a CSR matrix, a row per feature dict in dict order.
    Listings with the same words share their feature dicts: each dict is mapped once."""
    number: dict[int, int] = {}
    distinct: list[dict[str, float]] = []
    which = np.empty(len(rows), dtype=np.int64)
    for i, features in enumerate(rows):
        found = number.get(id(features))
        if found is None:
            found = number[id(features)] = len(distinct)
            distinct.append(features)
        which[i] = found
    cols = space.columns[comp]
    indices: list[int] = []
    data: list[float] = []
    lengths = np.empty(len(distinct), dtype=np.int64)
    for d, features in enumerate(distinct):
        try:
            idx = [cols[key] for key in features]
            vals = list(features.values())
        except KeyError:
            idx, vals = space.row(comp, features, grow=grow)
        indices.extend(idx)
        data.extend(vals)
        lengths[d] = len(idx)
    start = np.concatenate([[0], np.cumsum(lengths)])
    row_lengths = lengths[which]
    indptr = np.concatenate([[0], np.cumsum(row_lengths)]).astype(np.int64)
    nnz = int(indptr[-1])
    source = np.repeat(start[which] - indptr[:-1], row_lengths) + np.arange(nnz)
    return sparse.csr_matrix(
        (np.array(data, dtype=np.float64)[source], np.array(indices, dtype=np.int32)[source], indptr),
        shape=(len(rows), space.width(comp)),
    )


def _aligned_values(product: sparse.csr_matrix, keys: IntArray, ncols: int) -> FloatArray:
    """Values of ``product`` at the (row, col) positions encoded in sorted ``keys``."""
    coo = product.tocoo()
    out = np.zeros(len(keys), dtype=np.float64)
    if coo.nnz == 0 or len(keys) == 0:
        return out
    pkeys = coo.row.astype(np.int64) * ncols + coo.col.astype(np.int64)
    pos = np.searchsorted(keys, pkeys)
    pos = np.minimum(pos, len(keys) - 1)
    ok = keys[pos] == pkeys
    out[pos[ok]] = coo.data[ok]  # canonical products: one entry per (row, col)
    return out


def context_arrays(
    offers: SideMatrices, oi: IntArray, needs: SideMatrices, ni: IntArray, km: FloatArray | None = None
) -> ContextArrays:
    """Context inputs for pairs (offers row ``oi[k]``, needs row ``ni[k]``)."""
    if km is None:
        km = geo.haversine_km_arrays(offers.lat[oi], offers.lon[oi], needs.lat[ni], needs.lon[ni])
    return ContextArrays(
        distance_km=km,
        radius_km=needs.radius[ni],
        offer_hazardous=offers.hazardous[oi],
        need_accepts=needs.accepts[ni],
        offer_annual=offers.annual[oi],
        offer_lot=offers.lot[oi],
        offer_freq=offers.freq[oi],
        need_annual=needs.annual[ni],
        need_lot=needs.lot[ni],
        need_freq=needs.freq[ni],
        offer_from=offers.avail_from[oi],
        offer_until=offers.avail_until[oi],
        need_from=needs.avail_from[ni],
        need_until=needs.avail_until[ni],
        offer_forbids=offers.forbids[oi],
        need_uses=needs.uses[ni],
    )


def component_products(
    offers: SideMatrices, oi: IntArray, needs: SideMatrices, ni: IntArray
) -> dict[str, sparse.csr_matrix]:
    """Per feature block, the |oi| × |ni| sparse matrix of summed feature products."""
    out: dict[str, sparse.csr_matrix] = {}
    for comp in FEATURE_BLOCKS:
        a = offers.mats[comp][oi]
        b = needs.mats[comp][ni]
        width = max(a.shape[1], b.shape[1])
        prod = (_widen(a, width) @ _widen(b, width).T).tocsr()
        prod.sum_duplicates()
        out[comp] = prod
    return out


def pair_block(
    offers: SideMatrices,
    oi: IntArray,
    needs: SideMatrices,
    ni: IntArray,
    dense: bool = False,
) -> tuple[IntArray, IntArray, dict[str, FloatArray], ContextArrays]:
    """Material components and context inputs for the block ``oi`` × ``ni``.

    Returns positions (into ``oi`` and ``ni``) of the pairs considered: every pair when ``dense``,
    else the pairs sharing at least one feature of a candidate block (all others have a material
    relevance of 0), with their four material components.
    """
    oi = np.asarray(oi, dtype=np.int64)
    ni = np.asarray(ni, dtype=np.int64)
    products = component_products(offers, oi, needs, ni)
    ncols = len(ni)
    if dense:
        rows = np.repeat(np.arange(len(oi), dtype=np.int64), len(ni))
        cols = np.tile(np.arange(len(ni), dtype=np.int64), len(oi))
    else:
        union = products[CANDIDATE_BLOCKS[0]].copy()
        union.data = np.ones_like(union.data)
        for comp in CANDIDATE_BLOCKS[1:]:
            p = products[comp].copy()
            p.data = np.ones_like(p.data)
            union = union + p
        union.sum_duplicates()
        coo = union.tocoo()
        rows = coo.row.astype(np.int64)
        cols = coo.col.astype(np.int64)
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
    keys = rows * ncols + cols
    raw = components_from_blocks(
        {comp: finish_component(comp, _aligned_values(products[comp], keys, ncols)) for comp in FEATURE_BLOCKS},
        offers.sector_known[oi[rows]] & needs.sector_known[ni[cols]],
    )
    ctx = context_arrays(offers, oi[rows], needs, ni[cols])
    return rows, cols, raw, ctx


# ---------------------------------------------------------------------------------------------
# The fast kernel
# ---------------------------------------------------------------------------------------------

# Material relevance under this cannot reach ``MIN_SCORE`` (the context factor is at most 1; the
# margin covers rounding).
RELEVANCE_FLOOR = MIN_SCORE * (1.0 - 1e-12)


class Scratch:
    """Reusable per-thread buffers for ``score_block``: grids of needs × offers cells."""

    def __init__(self) -> None:
        self._mask = np.zeros(0, dtype=bool)
        self._pair_of = np.zeros(0, dtype=np.int32)
        self._values = np.zeros(0, dtype=np.float64)

    def grids(self, cells: int) -> tuple[NDArray[np.bool_], NDArray[np.int32]]:
        """(mask, pair_of) of at least ``cells`` cells, all False and all -1: a caller may write to
        them and must set them back."""
        if len(self._mask) < cells:
            self._mask = np.zeros(cells, dtype=bool)
            self._pair_of = np.full(cells, -1, dtype=np.int32)
        return self._mask, self._pair_of

    def clear(self, cells: IntArray) -> None:
        """Unmark ``cells`` in the mask."""
        self._mask[cells] = False

    def zero_grid(self, cells: int) -> FloatArray:
        """A grid of ``cells`` zeros: a caller may write to it and must set it back to zero."""
        if len(self._values) < cells:
            self._values = np.zeros(cells)
        return self._values[:cells]


@dataclass
class BlockScores:
    """Pairs of a block scoring at least ``MIN_SCORE``, as positions into the block's ``ni`` and
    ``oi``, in need-major order (by need position, then offer position)."""

    need_pos: IntArray
    offer_pos: IntArray
    score: FloatArray
    raw: dict[str, FloatArray] | None = None  # the four material components, when asked for

    @classmethod
    def empty(cls, with_raw: bool = False) -> BlockScores:
        z = np.zeros(0, dtype=np.int64)
        raw = {c: np.zeros(0) for c in MATERIAL_COMPONENTS} if with_raw else None
        return cls(z, z.copy(), np.zeros(0), raw)


# Blocks compared listing by listing (words and codes); the route and sector blocks depend on few
# distinct profiles (uses, sectors) and are compared between classes of listings (``classes``).
STRONG_BLOCKS = ("text", "material", "code")
assert set(STRONG_BLOCKS) | {"route", "sector"} == set(FEATURE_BLOCKS) and "route" in CANDIDATE_BLOCKS


def layout(a: SideMatrices, b: SideMatrices, blocks: tuple[str, ...]) -> tuple[int, ...]:
    """Column offsets of ``blocks`` side by side, wide enough for both sides."""
    widths = [max(a.mats[c].shape[1], b.mats[c].shape[1]) for c in blocks]
    return tuple(int(x) for x in np.concatenate([[0], np.cumsum(widths)]))


@dataclass
class Relevant:
    """Pairs of a block within the need's radius whose material relevance can reach
    ``MIN_SCORE``, as positions into the block's ``ni`` and ``oi``."""

    need_pos: IntArray
    offer_pos: IntArray
    relevance: FloatArray
    inside: NDArray[np.bool_]  # surely within the radius (the exact test may drop the others)
    raw: dict[str, FloatArray] | None = None

    @classmethod
    def empty(cls, with_raw: bool = False) -> Relevant:
        z = np.zeros(0, dtype=np.int64)
        raw = {c: np.zeros(0) for c in MATERIAL_COMPONENTS} if with_raw else None
        return cls(z, z.copy(), np.zeros(0), np.zeros(0, dtype=bool), raw)

    def take(self, which: IntArray) -> Relevant:
        raw = {c: v[which] for c, v in self.raw.items()} if self.raw is not None else None
        return Relevant(self.need_pos[which], self.offer_pos[which], self.relevance[which], self.inside[which], raw)

    @classmethod
    def concat(cls, parts: Sequence[Relevant]) -> Relevant:
        """The pairs of all parts, in need-major order (stable)."""
        need_pos = np.concatenate([p.need_pos for p in parts])
        order = stable_order(need_pos)
        raw = None
        if all(p.raw is not None for p in parts):
            raw = {
                c: np.concatenate([p.raw[c] for p in parts if p.raw is not None])[order] for c in MATERIAL_COMPONENTS
            }
        return cls(
            need_pos[order],
            np.concatenate([p.offer_pos for p in parts])[order],
            np.concatenate([p.relevance for p in parts])[order],
            np.concatenate([p.inside for p in parts])[order],
            raw,
        )


def stable_order(keys: IntArray) -> IntArray:
    """A stable sort order of small non-negative integers (radix sort when they fit 16 bits)."""
    if len(keys) == 0 or int(keys.max()) < 2**15:
        result: IntArray = np.argsort(keys.astype(np.int16), kind="stable").astype(np.int64)
    else:
        result = np.argsort(keys, kind="stable").astype(np.int64)
    return result


@dataclass
class BlockTable:
    """The classes (see ``SideMatrices.classes``) of a block's listings, numbered within the block,
    and what a pair of each two classes gets from the route and sector blocks."""

    go: IntArray  # class of each offer position
    gn: IntArray  # class of each need position
    route: FloatArray  # (offer classes, need classes): the route component (with the sector flow)
    relevance: FloatArray  # the material relevance of a pair that shares nothing else
    offers_by_class: IntArray  # offer positions sorted by class
    offer_class_start: IntArray  # where each class starts in it (one more: the end)
    needs_by_class: IntArray
    need_class_start: IntArray


def block_table(offers: SideMatrices, oi: IntArray, needs: SideMatrices, ni: IntArray) -> BlockTable:
    o_class, o_route, o_sector = offers.classes()
    n_class, n_route, n_sector = needs.classes()
    o_used, go = _renumber(o_class[oi], len(o_route))
    n_used, gn = _renumber(n_class[ni], len(n_route))
    tables = profile_tables(offers, needs)
    finished = {
        "route": tables.route[np.ix_(o_route[o_used], n_route[n_used])],
        "sector": tables.sector[np.ix_(o_sector[o_used], n_sector[n_used])],
    }
    known = tables.offer_sector[o_sector[o_used]][:, None] & tables.need_sector[n_sector[n_used]][None, :]
    zeros = np.zeros((len(o_used), len(n_used)))
    route = components_from_blocks({**{c: zeros for c in STRONG_BLOCKS}, **finished}, known)["route"]
    relevance = material_relevance({"text": zeros, "material": zeros, "code": zeros, "route": route})
    o_by, o_start = _by_class(go, len(o_used))
    n_by, n_start = _by_class(gn, len(n_used))
    return BlockTable(go, gn, route, relevance, o_by, o_start, n_by, n_start)


@dataclass
class ProfileTables:
    """The route and sector blocks, finished, of every offer profile × need profile of those
    blocks (a hundred to a few thousand of each), and which sector profiles have features."""

    route: FloatArray
    sector: FloatArray
    offer_sector: NDArray[np.bool_]
    need_sector: NDArray[np.bool_]


def profile_tables(offers: SideMatrices, needs: SideMatrices) -> ProfileTables:
    """``ProfileTables`` of two sides, kept with ``offers`` for the last ``needs`` (each block
    of a rematch takes its classes' values from them)."""
    cached = offers._pair_tables
    if cached is not None and cached[0] is needs:
        return cached[1]
    finished: dict[str, FloatArray] = {}
    for block in ("route", "sector"):
        _, a = offers.profiles(block)
        _, b = needs.profiles(block)
        width = max(a.shape[1], b.shape[1])
        finished[block] = finish_component(block, (_widen(a, width) @ _widen(b, width).T).toarray())
    _, a = offers.profiles("sector")
    _, b = needs.profiles("sector")
    tables = ProfileTables(finished["route"], finished["sector"], np.diff(a.indptr) > 0, np.diff(b.indptr) > 0)
    offers._pair_tables = (needs, tables)
    return tables


def prepare_blocks(offers: SideMatrices, needs: SideMatrices) -> None:
    """Build what every block of the two sides reads (the stacked and spread strong blocks, the
    classes, ``profile_tables``), once: threads starting on blocks would each build their own."""
    offsets = layout(offers, needs, STRONG_BLOCKS)
    offers.stacked(offsets, STRONG_BLOCKS)
    needs.spread(offsets, STRONG_BLOCKS)
    offers.classes()
    needs.classes()
    profile_tables(offers, needs)


def _by_class(classes: IntArray, count: int) -> tuple[IntArray, IntArray]:
    order = stable_order(classes)
    start = np.concatenate([[0], np.cumsum(np.bincount(classes, minlength=count))]).astype(np.int64)
    return order, start


def _expand(takes: NDArray[np.bool_], by_class: IntArray, start: IntArray) -> tuple[IntArray, IntArray]:
    """(row, member) for every row of ``takes`` (rows × classes) and every member of each class
    the row takes; rows in order."""
    rows, classes = np.nonzero(takes)
    counts = start[classes + 1] - start[classes]
    total = int(counts.sum())
    if total == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z.copy()
    first = np.cumsum(counts) - counts
    offset = np.arange(total, dtype=np.int64) - np.repeat(first - start[classes], counts)
    return np.repeat(rows.astype(np.int64), counts), by_class[offset]


def class_values(side: SideMatrices, one: SideMatrices) -> tuple[FloatArray, FloatArray]:
    """(route component, relevance) of a pair of ``one``'s single listing and a listing of each
    class of ``side`` (of the opposite kind) that shares no word or code: as ``block_table``, with
    the sums taken offer-side first."""
    finished: dict[str, FloatArray] = {}
    for block in ("route", "sector"):
        a = side.class_rows(block)
        b = one.mats[block]
        width = max(a.shape[1], b.shape[1])
        a, b = _widen(a, width), _widen(b, width)
        sums = (a @ b.T) if side.kind != NEED else (b @ a.T).T
        finished[block] = finish_component(block, sums.toarray().ravel())
    known = (np.diff(side.class_rows("sector").indptr) > 0) & bool(one.sector_known[0])
    zeros = np.zeros(known.shape[0])
    route = components_from_blocks({**{c: zeros for c in STRONG_BLOCKS}, **finished}, known)["route"]
    relevance = material_relevance({"text": zeros, "material": zeros, "code": zeros, "route": route})
    return route, relevance


def _renumber(values: IntArray, size: int) -> tuple[IntArray, IntArray]:
    """(the distinct values, sorted; the position of each value among them), for values < size."""
    seen = np.zeros(size, dtype=bool)
    seen[values] = True
    used = np.flatnonzero(seen)
    number = np.zeros(size, dtype=np.int64)
    number[used] = np.arange(len(used))
    return used, number[values]


def _in_radius(
    offers: SideMatrices, oi: IntArray, needs: SideMatrices, ni: IntArray, need_pos: IntArray, offer_pos: IntArray
) -> tuple[IntArray | None, NDArray[np.bool_]]:
    """(positions of the pairs that may be within the need's radius, None for all; which of those
    are surely within): u·v against the cosines of the radius widened and narrowed."""
    n_cos = needs.cos_reach[ni]
    if not np.any(n_cos > -2.0):
        return None, np.ones(len(need_pos), dtype=bool)
    nx = np.take(needs.xyz, ni, axis=1)
    ox = np.take(offers.xyz, oi, axis=1)
    dot = nx[0][need_pos] * ox[0][offer_pos]
    dot += nx[1][need_pos] * ox[1][offer_pos]
    dot += nx[2][need_pos] * ox[2][offer_pos]
    near = dot >= n_cos[need_pos]
    o_unknown = ~offers.located[oi]
    any_unknown = bool(o_unknown.any())
    if any_unknown:
        near |= o_unknown[offer_pos]
    w = np.flatnonzero(near)
    inside = dot[w] >= needs.cos_inside[ni][need_pos[w]]
    if any_unknown:
        inside |= o_unknown[offer_pos[w]]
    return w, inside


def strong_pairs(
    offers: SideMatrices,
    oi: IntArray,
    needs: SideMatrices,
    ni: IntArray,
    table: BlockTable,
    scratch: Scratch,
    with_raw: bool = False,
) -> tuple[Relevant, IntArray]:
    """The pairs sharing a word or a code (``STRONG_BLOCKS``), within the radius, with their
    relevance, in need-major order; and every cell sharing one (in radius or not), which stay
    marked in ``scratch``'s mask for the caller to clear (``Scratch.clear``).

    One sparse product does the three blocks: offers' blocks side by side (``stacked``) times
    needs' blocks one row each (``spread``), so entry (offer, 3 × need + block) is the block's sum
    of products, summed in the same order as the block's own product would."""
    nj, nc = len(ni), len(oi)
    cells = nj * nc
    nb = len(STRONG_BLOCKS)
    mask, pair_of = scratch.grids(cells)
    none = np.zeros(0, dtype=np.int64)
    if cells == 0:
        return Relevant.empty(with_raw), none
    offsets = layout(offers, needs, STRONG_BLOCKS)
    slots = (ni[:, None] + needs.size * np.arange(nb)[None, :]).ravel()
    prod = offers.stacked(offsets, STRONG_BLOCKS)[oi] @ needs.spread(offsets, STRONG_BLOCKS)[slots].T
    if prod.nnz == 0:
        return Relevant.empty(with_raw), none
    # Cell of each entry: need position × nc + offer position (int32: a block has < 2**31 cells).
    col = prod.indices
    flat = (col // nb).astype(np.int32) * np.int32(nc)
    flat += np.repeat(np.arange(nc, dtype=np.int32), np.diff(prod.indptr))
    mask[flat] = True
    cells_hit = np.flatnonzero(mask[:cells])
    need_pos = cells_hit // nc
    offer_pos = cells_hit - need_pos * nc
    w, inside = _in_radius(offers, oi, needs, ni, need_pos, offer_pos)
    cand = cells_hit if w is None else cells_hit[w]
    if w is not None:
        need_pos, offer_pos = need_pos[w], offer_pos[w]
    n_pairs = len(cand)
    if n_pairs == 0:
        return Relevant.empty(with_raw), cells_hit
    # Finished block values of the kept pairs (entries of other cells are dropped): the same
    # ``finish_component``, taken on the nonzero sums only.
    pair_of[cand] = np.arange(n_pairs, dtype=np.int32)
    entry_pair = pair_of[flat]
    pair_of[cand] = -1
    kept = np.flatnonzero(entry_pair >= 0)
    block = col[kept] % nb
    value = prod.data[kept]
    for power in sorted({POWER[c] for c in STRONG_BLOCKS}):
        of_power = np.array([POWER[c] == power for c in STRONG_BLOCKS])
        at = np.flatnonzero(of_power[block])
        value[at] = np.minimum(value[at], 1.0) if power == 1.0 else np.minimum(1.0, np.power(value[at], 1.0 / power))
    finished_all = np.zeros(nb * n_pairs)
    finished_all[block * n_pairs + entry_pair[kept]] = value
    raw = {comp: finished_all[j * n_pairs : (j + 1) * n_pairs] for j, comp in enumerate(STRONG_BLOCKS)}
    raw["route"] = table.route[table.go[offer_pos], table.gn[need_pos]]
    relevance = material_relevance(raw)
    keep = np.flatnonzero(relevance >= RELEVANCE_FLOOR)
    out_raw = {c: raw[c][keep] for c in MATERIAL_COMPONENTS} if with_raw else None
    return Relevant(need_pos[keep], offer_pos[keep], relevance[keep], inside[keep], out_raw), cells_hit


def class_pairs(
    offers: SideMatrices,
    oi: IntArray,
    needs: SideMatrices,
    ni: IntArray,
    table: BlockTable,
    scratch: Scratch,
    need_classes: NDArray[np.bool_] | None = None,
    offer_classes: NDArray[np.bool_] | None = None,
    rows: IntArray | None = None,
    with_raw: bool = False,
) -> Relevant:
    """Pairs sharing no word or code (cells not marked in ``scratch``'s mask), within the radius:
    those whose need takes the offer's class (``need_classes``, needs × offer classes) or whose
    offer takes the need's class (``offer_classes``, offers × need classes), given as one of the
    two, for the need (offer) positions ``rows`` when given (one per row), else all; relevance
    from the table. Need-major order for ``need_classes``."""
    nj, nc = len(ni), len(oi)
    if need_classes is not None:
        need_pos, offer_pos = _expand(need_classes, table.offers_by_class, table.offer_class_start)
        if rows is not None:
            need_pos = rows[need_pos]
    else:
        assert offer_classes is not None
        offer_pos, need_pos = _expand(offer_classes, table.needs_by_class, table.need_class_start)
        if rows is not None:
            offer_pos = rows[offer_pos]
    if len(need_pos) == 0:
        return Relevant.empty(with_raw)
    mask, _ = scratch.grids(nj * nc)
    w = np.flatnonzero(~mask[need_pos * nc + offer_pos])
    need_pos, offer_pos = need_pos[w], offer_pos[w]
    near, inside = _in_radius(offers, oi, needs, ni, need_pos, offer_pos)
    if near is not None:
        need_pos, offer_pos = need_pos[near], offer_pos[near]
    go, gn = table.go[offer_pos], table.gn[need_pos]
    relevance = table.relevance[go, gn]
    raw = None
    if with_raw:
        zeros = np.zeros(len(need_pos))
        raw = {"text": zeros, "material": zeros, "code": zeros, "route": table.route[go, gn]}
    return Relevant(need_pos, offer_pos, relevance, inside, raw)


def row_chunks(takes: NDArray[np.bool_], class_sizes: IntArray, budget: int) -> list[IntArray]:
    """Rows of ``takes`` (rows × classes) in consecutive runs of about ``budget`` pairs each
    (a row's pairs: the members of the classes it takes)."""
    # In floats: BLAS (exact for these counts) is twice as fast as numpy's integer product.
    per_row = (takes.astype(np.float64) @ class_sizes.astype(np.float64)).astype(np.int64)
    ends = np.cumsum(per_row)
    if len(ends) == 0 or ends[-1] <= budget:
        return [np.arange(len(per_row), dtype=np.int64)]
    cut = np.searchsorted(ends, np.arange(budget, int(ends[-1]), budget), side="right")
    bounds = np.unique(np.concatenate([[0], cut, [len(per_row)]]))
    return [np.arange(a, b, dtype=np.int64) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def score_block(
    offers: SideMatrices,
    oi: IntArray,
    needs: SideMatrices,
    ni: IntArray,
    scratch: Scratch | None = None,
    with_raw: bool = False,
) -> BlockScores:
    """Every pair of ``offers[oi]`` × ``needs[ni]`` that scores at least ``MIN_SCORE``, with its
    score, exactly as ``pair_block`` and ``scoring`` compute it (distances to about 1e-12 km)."""
    rel = block_relevance(offers, oi, needs, ni, scratch, with_raw)
    score = pair_scores(offers, oi[rel.offer_pos], needs, ni[rel.need_pos], rel.relevance)
    ok = np.flatnonzero(score >= MIN_SCORE)
    raw = {c: v[ok] for c, v in rel.raw.items()} if rel.raw is not None else None
    return BlockScores(rel.need_pos[ok], rel.offer_pos[ok], score[ok], raw)


def block_relevance(
    offers: SideMatrices,
    oi: IntArray,
    needs: SideMatrices,
    ni: IntArray,
    scratch: Scratch | None = None,
    with_raw: bool = False,
) -> Relevant:
    """The pairs of ``offers[oi]`` × ``needs[ni]`` within the need's radius whose material
    relevance reaches ``MIN_SCORE``, with that relevance, in need-major order."""
    scratch = scratch if scratch is not None else Scratch()
    if len(oi) == 0 or len(ni) == 0:
        return Relevant.empty(with_raw)
    table = block_table(offers, oi, needs, ni)
    strong, marked = strong_pairs(offers, oi, needs, ni, table, scratch, with_raw)
    try:
        by_class = table.relevance[:, table.gn].T >= RELEVANCE_FLOOR
        rest = class_pairs(offers, oi, needs, ni, table, scratch, need_classes=by_class, with_raw=with_raw)
    finally:
        scratch.clear(marked)
    return Relevant.concat([strong, rest])


def relevance_of(
    offers: SideMatrices,
    o_rows: IntArray,
    needs: SideMatrices,
    n_rows: IntArray,
    summed: dict[str, FloatArray],
    with_raw: bool = False,
    finished: bool = False,
) -> tuple[IntArray, FloatArray, dict[str, FloatArray] | None]:
    """From the summed feature products of pairs (a block missing from ``summed`` is 0; already
    through ``finish_component`` if ``finished``) to the positions of the pairs whose material
    relevance can reach ``MIN_SCORE`` (the context factor is at most 1), that relevance and, if
    asked for, their material components."""
    n = len(o_rows)
    zeros = np.zeros(n)
    blocks = {
        comp: (summed[comp] if finished else finish_component(comp, summed[comp])) if comp in summed else zeros
        for comp in FEATURE_BLOCKS
    }
    raw = components_from_blocks(blocks, offers.sector_known[o_rows] & needs.sector_known[n_rows])
    relevance = material_relevance(raw)
    keep = np.flatnonzero(relevance >= RELEVANCE_FLOOR)
    out_raw = {c: raw[c][keep] for c in MATERIAL_COMPONENTS} if with_raw else None
    return keep, relevance[keep], out_raw


def finish_pairs(
    offers: SideMatrices,
    o_rows: IntArray,
    needs: SideMatrices,
    n_rows: IntArray,
    summed: dict[str, FloatArray],
    with_raw: bool = False,
) -> tuple[IntArray, FloatArray, dict[str, FloatArray] | None]:
    """From the summed feature products of pairs to the positions of the pairs scoring at least
    ``MIN_SCORE``, their scores and, if asked for, their material components."""
    keep, relevance, raw = relevance_of(offers, o_rows, needs, n_rows, summed, with_raw)
    score = pair_scores(offers, o_rows[keep], needs, n_rows[keep], relevance)
    ok = np.flatnonzero(score >= MIN_SCORE)
    out_raw = {c: v[ok] for c, v in raw.items()} if raw is not None else None
    return keep[ok], score[ok], out_raw


@dataclass
class Attrs:
    """What the context of a pair reads of each side (see ``SideMatrices``), for some rows of a
    side: gathered once per block, so that each pair reads small arrays."""

    located: NDArray[np.bool_]
    xyz: FloatArray
    radius: FloatArray
    hazardous: NDArray[np.bool_]
    accepts: NDArray[np.bool_]
    annual: FloatArray
    lot: FloatArray
    freq: NDArray[np.int8]
    supply: FloatArray
    dated: NDArray[np.bool_]
    avail_from: FloatArray
    avail_until: FloatArray
    forbids: IntArray
    uses: IntArray

    @classmethod
    def of(cls, side: SideMatrices, rows: IntArray) -> Attrs:
        return cls(
            located=side.located[rows],
            xyz=np.take(side.xyz, rows, axis=1),
            radius=side.radius[rows],
            hazardous=side.hazardous[rows],
            accepts=side.accepts[rows],
            annual=side.annual[rows],
            lot=side.lot[rows],
            freq=side.freq[rows],
            supply=side.supply[rows],
            dated=side.dated[rows],
            avail_from=side.avail_from[rows],
            avail_until=side.avail_until[rows],
            forbids=side.forbids[rows],
            uses=side.uses[rows],
        )


def surely_allowed(
    offers: SideMatrices | Attrs,
    o_rows: IntArray,
    needs: SideMatrices | Attrs,
    n_rows: IntArray,
    inside: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """Pairs no gate can stop: surely within the radius (``inside``), not a hazardous offer to a
    need that cannot take it, nothing the law forbids, a lot the seller can fill (or unknown)."""
    ok = inside.copy()
    haz = offers.hazardous[o_rows]
    if haz.any():
        ok &= ~(haz & ~needs.accepts[n_rows])
    ok &= ~law_vetoed(offers, o_rows, needs, n_rows)
    n_lot = needs.lot[n_rows]
    lot = np.flatnonzero(~np.isnan(n_lot))
    if len(lot):
        with np.errstate(invalid="ignore", divide="ignore"):
            ok[lot] &= ~(offers.supply[o_rows[lot]] / n_lot[lot] < quantities.MIN_LOT_SHARE)
    return ok


def law_vetoed(
    offers: SideMatrices | Attrs, o_rows: IntArray, needs: SideMatrices | Attrs, n_rows: IntArray
) -> NDArray[np.bool_]:
    """Pairs the law forbids (``law``): a rule the offer falls under whose uses the need names."""
    forbids = offers.forbids[o_rows]
    result: NDArray[np.bool_] = (forbids & needs.uses[n_rows]) != 0
    return result


def pair_scores(
    offers: SideMatrices | Attrs, o_rows: IntArray, needs: SideMatrices | Attrs, n_rows: IntArray, relevance: FloatArray
) -> FloatArray:
    """Final scores of pairs (offers row ``o_rows[k]``, needs row ``n_rows[k]``) of known material
    relevance: ``scoring.context_components``, ``context_fit`` and ``final_score`` fused, with the
    same arithmetic, on what each pair needs."""
    n = len(o_rows)
    if n == 0:
        return np.zeros(0)
    both = offers.located[o_rows] & needs.located[n_rows]
    km = np.full(n, np.nan)
    # ``np.take`` gathers columns several times faster than ``xyz[:, rows]``.
    if both.all():
        km = geo.chord_km(np.take(offers.xyz, o_rows, axis=1), np.take(needs.xyz, n_rows, axis=1))
    elif both.any():
        w = np.flatnonzero(both)
        km[w] = geo.chord_km(np.take(offers.xyz, o_rows[w], axis=1), np.take(needs.xyz, n_rows[w], axis=1))
    distance = geo.distance_decay(km)
    with np.errstate(invalid="ignore"):
        allowed = ~(km > needs.radius[n_rows])
    haz = offers.hazardous[o_rows]
    if haz.any():
        allowed &= ~(haz & ~needs.accepts[n_rows])
    allowed &= ~law_vetoed(offers, o_rows, needs, n_rows)
    qfit, compatible = _quantity_fit(offers, o_rows, needs, n_rows)
    allowed &= compatible
    avail = np.ones(n)
    dated = offers.dated[o_rows] & needs.dated[n_rows]
    if dated.any():
        w = np.flatnonzero(dated)
        ow, nw = o_rows[w], n_rows[w]
        avail[w] = quantities.availability_overlap_arrays(
            offers.avail_from[ow], offers.avail_until[ow], needs.avail_from[nw], needs.avail_until[nw]
        )
    context = context_fit({"distance": distance, "quantity": qfit, "availability": avail})
    return final_score(relevance, context, allowed)


def _quantity_fit(
    offers: SideMatrices | Attrs, o_rows: IntArray, needs: SideMatrices | Attrs, n_rows: IntArray
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """``quantities.quantity_fit_arrays`` (fit, compatible) for the pairs, with the same
    arithmetic; the lot terms are computed only where the need gives a lot (elsewhere they are
    neutral: a factor of exactly 1 and no gate)."""
    o_freq = offers.freq[o_rows]
    n_freq = needs.freq[n_rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.minimum(1.0, offers.annual[o_rows] / needs.annual[n_rows])
        fit = np.where(np.isnan(share), quantities.NEUTRAL, np.sqrt(np.clip(share, 0.0, 1.0)))
        compatible = np.ones(len(o_rows), dtype=bool)
        n_lot = needs.lot[n_rows]
        lot = np.flatnonzero(~np.isnan(n_lot))
        if len(lot):
            lot_need = n_lot[lot]
            o_lot = o_rows[lot]
            compatible[lot] = ~(offers.supply[o_lot] / lot_need < quantities.MIN_LOT_SHARE)
            lot_ratio = np.minimum(1.0, offers.lot[o_lot] / lot_need)
            fit[lot] = fit[lot] * np.where(np.isnan(lot_ratio), 1.0, 0.6 + 0.4 * lot_ratio)
        known = (o_freq >= 0) & (n_freq >= 0)
        once_mismatch = known & ((o_freq == 0) != (n_freq == 0))
        gap = np.abs(o_freq.astype(np.int16) - n_freq.astype(np.int16))
        rhythm = np.where(once_mismatch, 0.8, np.where(known & (gap >= 2), 0.9, 1.0))
        fit = np.clip(fit * rhythm, 0.0, 1.0)
    return fit, compatible
