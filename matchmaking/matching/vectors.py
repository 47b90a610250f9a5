"""Profiles as sparse matrices, and the vectorised scoring of blocks of pairs.

Each material component is a sum of products of per-listing features (see ``scoring``), so a
block of offers × needs is scored with one sparse matrix product per component; only pairs that
share at least one feature come out, which is exactly the set of pairs whose score can be above 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from matchmaking.matching import geo
from matchmaking.matching.records import NEED
from matchmaking.matching.scoring import (
    CANDIDATE_BLOCKS,
    FEATURE_BLOCKS,
    ContextArrays,
    Profile,
    components_from_blocks,
    finish_component,
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

    @property
    def size(self) -> int:
        return len(self.ids)

    @classmethod
    def build(
        cls, profiles: Sequence[Profile], space: FeatureSpace | None = None, kind: str | None = None
    ) -> SideMatrices:
        space = space if space is not None else FeatureSpace()
        n = len(profiles)
        mats: dict[str, sparse.csr_matrix] = {}
        for comp in FEATURE_BLOCKS:
            indptr = np.zeros(n + 1, dtype=np.int64)
            indices: list[int] = []
            data: list[float] = []
            for i, p in enumerate(profiles):
                idx, vals = space.row(comp, p.features[comp])
                indices.extend(idx)
                data.extend(vals)
                indptr[i + 1] = len(indices)
            mats[comp] = sparse.csr_matrix(
                (np.array(data, dtype=np.float64), np.array(indices, dtype=np.int32), indptr),
                shape=(n, space.width(comp)),
            )
        listings = [p.listing for p in profiles]

        def arr(values: list[float | None]) -> FloatArray:
            return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)

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
