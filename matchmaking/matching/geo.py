"""Distances between sites: haversine, radius search and the decay of interest with distance."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from sklearn.neighbors import BallTree

EARTH_RADIUS_KM = 6371.0088
# Interest halves at this distance. The UK industrial-symbiosis programme's median distance
# between partners was about 33 km; most by-products do not travel far, heavy ones even less.
HALF_DECAY_KM = 40.0
# A need that gives no radius is still not served from the other end of the country.
DEFAULT_MAX_KM = 250.0


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def haversine_km_arrays(
    lat1: NDArray[np.float64], lon1: NDArray[np.float64], lat2: NDArray[np.float64], lon2: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Vectorised haversine on arrays of degrees (NaN where a point is unknown)."""
    p1 = np.radians(lat1)
    p2 = np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    result: NDArray[np.float64] = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return result


def unit_vectors(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.float64]:
    """(3, n) points of the unit sphere (rows x, y, z) for degrees; 0 where a point is unknown."""
    p = np.radians(np.asarray(lat, dtype=np.float64))
    lam = np.radians(np.asarray(lon, dtype=np.float64))
    out = np.stack([np.cos(p) * np.cos(lam), np.cos(p) * np.sin(lam), np.sin(p)])
    out[:, ~np.isfinite(out).all(axis=0)] = 0.0
    return out


# ``cos_reach`` widens every radius by this much so that the dot-product test never drops a pair
# the exact distance would keep (rounding of the dot product is far below a metre).
REACH_MARGIN_KM = 0.001


def cos_reach(radius_km: NDArray[np.float64], located: NDArray[np.bool_], inside: bool = False) -> NDArray[np.float64]:
    """Cosine of the angle of each radius, widened by ``REACH_MARGIN_KM``: a point at unit vector
    ``v`` may be within the radius of a site at ``u`` only if ``u·v >= cos_reach``; with ``inside``,
    narrowed instead: a point with ``u·v >= cos_reach`` is surely within. -2 (anything passes) for
    unknown sites and radii beyond half the globe; +2 (nothing is sure) for radii under the margin."""
    margin = -REACH_MARGIN_KM if inside else REACH_MARGIN_KM
    angle = (np.asarray(radius_km, dtype=np.float64) + margin) / EARTH_RADIUS_KM
    with np.errstate(invalid="ignore"):
        out = np.where(angle < math.pi, np.cos(np.clip(angle, 0.0, math.pi)), -2.0)
        out = np.where(angle < 0.0, 2.0, out)
    result: NDArray[np.float64] = np.where(located, out, -2.0)
    return result


def chord_km(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Great-circle distance in km between columns of unit vectors ``a`` and ``b`` ((3, n) each).

    The same distance as ``haversine_km_arrays`` (the haversine term is the squared half chord)
    to about 1e-12 km, computed from coordinate differences, without trigonometry per pair."""
    d = a[0] - b[0]
    sq = d * d
    d = a[1] - b[1]
    sq += d * d
    d = a[2] - b[2]
    sq += d * d
    half = np.sqrt(sq)
    half *= 0.5
    result: NDArray[np.float64] = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, half))
    return result


def distance_decay(km: NDArray[np.float64]) -> NDArray[np.float64]:
    """1 at the door, 0.5 at ``HALF_DECAY_KM``, slowly towards 0 beyond; NaN (unknown) → 0.5."""
    out = 1.0 / (1.0 + np.asarray(km, dtype=np.float64) / HALF_DECAY_KM)
    result: NDArray[np.float64] = np.where(np.isnan(out), 0.5, out)
    return result


def effective_radius(radius_km: float | None) -> float:
    """The hard limit a need applies: its own radius, else ``DEFAULT_MAX_KM``."""
    return float(radius_km) if radius_km is not None and radius_km > 0 else DEFAULT_MAX_KM


class RadiusIndex:
    """Points on the sphere, searched by radius (a haversine BallTree)."""

    def __init__(self, lat: NDArray[np.float64], lon: NDArray[np.float64]) -> None:
        self.size = len(lat)
        pts = np.radians(np.column_stack([lat, lon])) if self.size else np.zeros((0, 2))
        self._tree = BallTree(pts, metric="haversine") if self.size else None

    def query(self, lat: float, lon: float, radius_km: float) -> NDArray[np.intp]:
        """Indices of the points within ``radius_km`` of (lat, lon)."""
        if self._tree is None:
            return np.zeros(0, dtype=np.intp)
        found = self._tree.query_radius(np.radians([[lat, lon]]), r=radius_km / EARTH_RADIUS_KM)
        result: NDArray[np.intp] = found[0].astype(np.intp)
        return result
