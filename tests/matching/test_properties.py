from hypothesis import given, settings
from hypothesis import strategies as st

from matchmaking.matching.geo import effective_radius, haversine_km
from matchmaking.matching.records import Listing
from matchmaking.matching.scoring import score_pair

WORDS = [
    "sciure",
    "copeaux",
    "palettes",
    "carton",
    "cendres volantes",
    "slag",
    "whey",
    "lactosérum",
    "fumier",
    "litière",
    "ciment",
    "aliment",
    "pneus",
    "ferraille",
    "boues",
    "huiles usagées",
    "compost",
    "verre",
]
title = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
lat = st.floats(min_value=42.0, max_value=51.0)
lon = st.floats(min_value=-4.5, max_value=8.0)
tonnes = st.one_of(st.none(), st.floats(min_value=0.001, max_value=10_000))
freq = st.one_of(st.none(), st.sampled_from(["once", "weekly", "monthly", "quarterly", "yearly"]))
code = st.one_of(st.none(), st.sampled_from(["03 01 05", "10 01 02", "16 01 03", "02 05 01", "13 02 05*"]))


@st.composite
def pair(draw: st.DrawFn) -> tuple[Listing, Listing]:
    offer = Listing(
        id=1,
        kind="offer",
        title=draw(title),
        low_code=draw(code),
        hazardous=draw(st.booleans()),
        lat=draw(lat),
        lon=draw(lon),
        annual_tonnes=draw(tonnes),
        lot_tonnes=draw(tonnes),
        frequency=draw(freq),
    )
    need = Listing(
        id=2,
        kind="need",
        title=draw(title),
        accepts_hazardous=draw(st.booleans()),
        lat=draw(lat),
        lon=draw(lon),
        radius_km=draw(st.one_of(st.none(), st.floats(min_value=1, max_value=500))),
        annual_tonnes=draw(tonnes),
        lot_tonnes=draw(tonnes),
        frequency=draw(freq),
    )
    return offer, need


@settings(max_examples=150, deadline=None)
@given(pair())
def test_score_properties(p: tuple[Listing, Listing]) -> None:
    offer, need = p
    score, expl = score_pair(offer, need)
    assert 0.0 <= score <= 1.0
    assert abs(sum(c.contribution for c in expl.components) - score) < 1e-9
    assert offer.lat is not None and offer.lon is not None and need.lat is not None and need.lon is not None
    if score > 0:
        assert haversine_km(offer.lat, offer.lon, need.lat, need.lon) <= effective_radius(need.radius_km)
    if offer.hazardous and not need.accepts_hazardous:
        assert score == 0.0
