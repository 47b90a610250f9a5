import math
from datetime import date

import numpy as np

from matchmaking.matching import geo, quantities


def test_haversine_paris_lyon() -> None:
    km = geo.haversine_km(48.8566, 2.3522, 45.7640, 4.8357)
    assert 385 < km < 400
    arr = geo.haversine_km_arrays(np.array([48.8566]), np.array([2.3522]), np.array([45.764]), np.array([4.8357]))
    assert abs(arr[0] - km) < 1e-6


def test_distance_decay_halves_and_handles_unknown() -> None:
    d = geo.distance_decay(np.array([0.0, geo.HALF_DECAY_KM, math.nan]))
    assert d[0] == 1.0 and abs(d[1] - 0.5) < 1e-9 and d[2] == 0.5


def test_radius_index() -> None:
    idx = geo.RadiusIndex(np.array([48.40, 48.41, 45.76]), np.array([-0.20, -0.21, 4.83]))
    assert sorted(idx.query(48.4, -0.2, 10).tolist()) == [0, 1]


def test_units_and_annualisation() -> None:
    assert quantities.to_tonnes(500, "kg") == 0.5
    assert quantities.to_tonnes(10, "m3", family="wood") == 10 * 0.1
    assert quantities.to_tonnes(3, "unit") is None
    assert quantities.to_tonnes(3, "unit", unit_mass_t=0.02) == 0.06
    assert quantities.annualise(None, 0.02, "monthly") == 0.24
    assert quantities.annualise(12.0, 1.0, "monthly") == 12.0
    assert quantities.annualise(None, None, None) is None
    assert quantities.normalise_frequency("Mensuel") == "monthly"


def test_twenty_kilos_a_month_is_not_a_five_tonne_lot() -> None:
    fit = quantities.quantity_fit(None, 0.02, "monthly", None, 5.0, "once")
    assert not fit.compatible


def test_share_of_need_covered() -> None:
    fit = quantities.quantity_fit(40.0, None, None, 50.0, None, None)
    assert fit.compatible and fit.share_of_need == 0.8
    assert 0 < fit.raw <= 1
    unknown = quantities.quantity_fit(None, None, None, None, None, None)
    assert unknown.raw == quantities.NEUTRAL and unknown.share_of_need is None


def test_availability_overlap() -> None:
    d = lambda y, m: float(date(y, m, 1).toordinal())  # noqa: E731
    inf = math.inf
    out = quantities.availability_overlap_arrays(
        np.array([d(2025, 1), d(2025, 1), -inf]),
        np.array([d(2025, 6), d(2025, 2), inf]),
        np.array([d(2025, 3), d(2026, 6), d(2025, 1)]),
        np.array([inf, inf, d(2025, 2)]),
    )
    assert out[0] == 1.0 and out[1] == 0.0 and out[2] == 1.0
