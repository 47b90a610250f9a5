"""Quantities and rhythm: units, frequencies, annual tonnes, lot compatibility, share covered.

20 kg a month is useless to a buyer who needs 5-tonne lots; 300 t a year may be too much for one
buyer but a good start. Everything here works on numpy arrays of pairs (NaN = unknown) so that the
engine scores thousands of pairs at once; the scalar helpers call the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matchmaking.matching import nomenclature

PER_YEAR = {"once": 1.0, "daily": 250.0, "weekly": 52.0, "monthly": 12.0, "quarterly": 4.0, "yearly": 1.0}
FREQUENCY_CODES = {"once": 0, "daily": 1, "weekly": 2, "monthly": 3, "quarterly": 4, "yearly": 5}
_FREQUENCY_ALIASES = {
    "ponctuel": "once",
    "ponctuelle": "once",
    "une fois": "once",
    "one-off": "once",
    "one off": "once",
    "jour": "daily",
    "quotidien": "daily",
    "quotidienne": "daily",
    "day": "daily",
    "hebdomadaire": "weekly",
    "semaine": "weekly",
    "week": "weekly",
    "mensuel": "monthly",
    "mensuelle": "monthly",
    "mois": "monthly",
    "month": "monthly",
    "trimestriel": "quarterly",
    "trimestrielle": "quarterly",
    "trimestre": "quarterly",
    "quarter": "quarterly",
    "annuel": "yearly",
    "annuelle": "yearly",
    "an": "yearly",
    "annual": "yearly",
    "year": "yearly",
}
UNIT_TONNES = {"t": 1.0, "tonne": 1.0, "tonnes": 1.0, "ton": 1.0, "tons": 1.0, "kg": 0.001, "g": 1e-6}
UNIT_VOLUME_M3 = {"m3": 1.0, "m³": 1.0, "l": 0.001, "litre": 0.001, "litres": 0.001, "liter": 0.001, "hl": 0.1}
UNIT_COUNT = {"unit", "units", "unite", "unité", "unités", "piece", "pièce", "pièces", "pieces", "u", "pc", "pcs"}

# A buyer's lot that the seller cannot fill to this share within a year is not a match.
MIN_LOT_SHARE = 0.5
NEUTRAL = 0.5  # quantity fit when nothing is known


def normalise_frequency(text: str | None) -> str | None:
    if not text:
        return None
    key = text.strip().lower()
    if key in PER_YEAR:
        return key
    return _FREQUENCY_ALIASES.get(key)


def to_tonnes(
    value: float,
    unit: str,
    family: str | None = None,
    density_t_per_m3: float | None = None,
    unit_mass_t: float | None = None,
) -> float | None:
    """Tonnes for a quantity in t, kg, m3, L or units; None when it cannot be converted.

    Volumes use the given density, else the family's typical bulk density from the seed; counts
    need the mass of one unit.
    """
    u = unit.strip().lower().replace("³", "3")
    if u in UNIT_TONNES:
        return value * UNIT_TONNES[u]
    if u in UNIT_VOLUME_M3:
        density = density_t_per_m3
        if density is None and family:
            fam = nomenclature.family_by_slug().get(family)
            density = fam.density_t_per_m3 if fam else None
        return value * UNIT_VOLUME_M3[u] * density if density is not None else None
    if u in UNIT_COUNT:
        return value * unit_mass_t if unit_mass_t is not None else None
    return None


def annualise(annual_tonnes: float | None, lot_tonnes: float | None, frequency: str | None) -> float | None:
    """Tonnes a year: as declared, else one lot times the lots per year (a one-off lot counts once)."""
    if annual_tonnes is not None and annual_tonnes > 0:
        return float(annual_tonnes)
    freq = normalise_frequency(frequency)
    if lot_tonnes is not None and lot_tonnes > 0:
        return float(lot_tonnes) * PER_YEAR.get(freq or "once", 1.0)
    return None


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


@dataclass(frozen=True, slots=True)
class QuantityFit:
    raw: float  # in [0, 1]
    share_of_need: float | None  # share of the need's annual tonnes the offer covers
    compatible: bool  # False: the seller cannot fill the buyer's lot (no match)


def quantity_fit_arrays(
    offer_annual: NDArray[np.float64],
    offer_lot: NDArray[np.float64],
    offer_freq: NDArray[np.int8],
    need_annual: NDArray[np.float64],
    need_lot: NDArray[np.float64],
    need_freq: NDArray[np.int8],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """(raw fit, share of the need covered (NaN unknown), compatible) for arrays of pairs.

    Frequencies are ``FREQUENCY_CODES`` with -1 for unknown; tonnes are NaN when unknown.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.minimum(1.0, offer_annual / need_annual)
        # What the seller can put in one delivery at most within a year.
        supply = np.where(np.isnan(offer_annual), offer_lot, offer_annual)
        lot_share = supply / need_lot
        compatible = ~(lot_share < MIN_LOT_SHARE)  # NaN (unknown) → compatible
        fit = np.where(np.isnan(share), NEUTRAL, np.sqrt(np.clip(share, 0.0, 1.0)))
        # A seller whose lots are smaller than the buyer's must stockpile: a lesser fit.
        lot_ratio = np.minimum(1.0, offer_lot / need_lot)
        fit = fit * np.where(np.isnan(lot_ratio), 1.0, 0.6 + 0.4 * lot_ratio)
        # Rhythm: one-off versus recurring, or very different cadences, fit less well.
        known = (offer_freq >= 0) & (need_freq >= 0)
        once_mismatch = known & ((offer_freq == 0) != (need_freq == 0))
        gap = np.abs(offer_freq.astype(np.int16) - need_freq.astype(np.int16))
        rhythm = np.where(once_mismatch, 0.8, np.where(known & (gap >= 2), 0.9, 1.0))
        fit = np.clip(fit * rhythm, 0.0, 1.0)
    return fit, share, compatible


def quantity_fit(
    offer_annual: float | None,
    offer_lot: float | None,
    offer_frequency: str | None,
    need_annual: float | None,
    need_lot: float | None,
    need_frequency: str | None,
) -> QuantityFit:
    """The same as :func:`quantity_fit_arrays` for one pair."""
    of = FREQUENCY_CODES.get(normalise_frequency(offer_frequency) or "", -1)
    nf = FREQUENCY_CODES.get(normalise_frequency(need_frequency) or "", -1)
    fit, share, ok = quantity_fit_arrays(
        np.array([_nan(annualise(offer_annual, offer_lot, offer_frequency))]),
        np.array([_nan(offer_lot)]),
        np.array([of], dtype=np.int8),
        np.array([_nan(annualise(need_annual, need_lot, need_frequency))]),
        np.array([_nan(need_lot)]),
        np.array([nf], dtype=np.int8),
    )
    s = float(share[0])
    return QuantityFit(raw=float(fit[0]), share_of_need=None if math.isnan(s) else s, compatible=bool(ok[0]))


def availability_overlap_arrays(
    offer_from: NDArray[np.float64],
    offer_until: NDArray[np.float64],
    need_from: NDArray[np.float64],
    need_until: NDArray[np.float64],
) -> NDArray[np.float64]:
    """1 when the periods overlap (or are unknown), fading to 0 over 180 days of gap.

    Dates are day ordinals, with -inf/+inf for an open start/end.
    """
    start = np.maximum(offer_from, need_from)
    end = np.minimum(offer_until, need_until)
    with np.errstate(invalid="ignore"):
        gap = np.where(end >= start, 0.0, start - end)
        result: NDArray[np.float64] = np.clip(1.0 - gap / 180.0, 0.0, 1.0) * np.where(gap > 0, 0.5, 1.0)
    return result
