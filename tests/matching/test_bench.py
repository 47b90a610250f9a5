"""The synthetic listings look like the service's, and the bench reports what issue #3 asks."""

from __future__ import annotations

import collections
import re

from matchmaking.matching import geo
from matchmaking.matching.bench import TOWNS, generate, run_bench
from matchmaking.matching.records import NEED, OFFER


def test_listings_look_like_the_service_records() -> None:
    listings = generate(2000, 2000, 4)
    offers = [x for x in listings if x.kind == OFFER]
    needs = [x for x in listings if x.kind == NEED]
    assert len(offers) == 2000 and len(needs) == 2000
    assert len({x.id for x in listings}) == 4000
    # NAF codes as the service passes them, descriptions for some, codes on offers only.
    assert 0.8 < sum(x.sector_naf is not None for x in listings) / 4000 < 0.95
    assert 0.3 < sum(bool(x.description) for x in listings) / 4000 < 0.5
    assert 0.4 < sum(x.low_code is not None for x in offers) / 2000 < 0.6
    assert all(x.low_code is None for x in needs)
    # Radii from 20 km to none given; hazardous offers exist and some needs take them.
    assert {x.radius_km for x in needs} == {20.0, 50.0, 100.0, 150.0, None}
    assert any(x.hazardous for x in offers) and any(x.accepts_hazardous for x in needs)
    # French and English, typos: many distinct titles for few materials.
    titles = collections.Counter(x.title for x in listings)
    assert len(titles) > 200
    assert any(re.search(r"[éèàç]", t) for t in titles) and any(t.startswith("used ") for t in titles)


def test_sites_are_clustered_around_towns_across_france() -> None:
    listings = generate(1500, 1500, 2)
    nearest = collections.Counter()
    for x in listings:
        assert x.lat is not None and x.lon is not None
        assert 41.0 < x.lat < 52.0 and -5.5 < x.lon < 9.0
        km = [geo.haversine_km(x.lat, x.lon, t[1], t[2]) for t in TOWNS]
        nearest[min(range(len(TOWNS)), key=km.__getitem__)] += 1
        assert min(km) < 120.0
    assert len(nearest) > 25  # most towns have listings
    assert max(nearest.values()) < 0.25 * len(listings)  # not all in one place


def test_bench_reports_every_figure() -> None:
    report = run_bench(150, 150, seed=1)
    for key in (
        "index_build_s=",
        "rematch_all_top10_s=",
        "match_ms p50=",
        "search_ms p50=",
        "suggest_code_ms p50=",
        "peak_rss_mb=",
        "recall_top10_vs_exhaustive=1.000",
        "rapidfuzz_cdist_s=",
        "speed_ratio_vs_rematch=",
    ):
        assert key in report
