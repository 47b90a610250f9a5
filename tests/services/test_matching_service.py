"""The bridge between the database and the engine, on the demo territory."""

import pytest
from sqlalchemy import select

from matchmaking.models import Firm, Listing, ListingStatus, Match, MatchStatus
from matchmaking.services import listings, matching, seeding


@pytest.fixture()
def demo(session):
    seeding.load_demo(session)
    session.commit()
    matching.reset_index()
    yield
    matching.reset_index()


def listing(session, firm_name: str, fragment: str) -> Listing:
    return session.scalars(
        select(Listing).join(Firm).where(Firm.name == firm_name, Listing.title.contains(fragment))
    ).one()


def test_the_bike_shop_inner_tubes_reach_the_pallet_maker(session, demo) -> None:
    tubes = session.scalars(select(Listing).join(Firm).where(Firm.name == "Cycles du Mont des Avaloirs",
                                                             Listing.kind == "offer")).first()
    need = listing(session, "Palettes et Emballages du Pail", "Caoutchouc pour patins")
    found = matching.refresh_matches(session, tubes.id)
    session.commit()
    by_need = {m.need_id: (m, fresh) for m, fresh in found}
    assert need.id in by_need
    match, fresh = by_need[need.id]
    assert fresh and 0 < match.score <= 1
    assert match.explanation["phrase_fr"]
    # The evidence adds up to the engine's score; the score a firm sees is its calibrated chance.
    assert abs(sum(c["contribution"] for c in match.explanation["components"]) - match.explanation["score"]) < 1e-3
    assert match.score == pytest.approx(match.explanation["probability"])
    # Running again finds the same pairs and reports nothing new.
    again = matching.refresh_matches(session, tubes.id)
    assert {m.id for m, _ in again} == {m.id for m, _ in found}
    assert not any(fresh for _, fresh in again)


def test_a_paused_listing_leaves_its_untouched_matches_stale(session, demo) -> None:
    need = listing(session, "Palettes et Emballages du Pail", "Caoutchouc pour patins")
    found = matching.refresh_matches(session, need.id)
    session.commit()
    assert found
    listings.set_status(session, need, ListingStatus.paused)
    assert matching.refresh_matches(session, need.id) == []
    statuses = set(session.scalars(select(Match.status).where(Match.need_id == need.id)))
    assert statuses == {MatchStatus.stale}


def test_no_firm_is_matched_with_itself(session, demo) -> None:
    for offer in session.scalars(select(Listing).where(Listing.kind == "offer")).all()[:30]:
        for match, _ in matching.refresh_matches(session, offer.id):
            assert match.need.firm_id != offer.firm_id


def test_search_finds_inner_tubes_near_a_site(session, demo) -> None:
    pallet_site = listing(session, "Palettes et Emballages du Pail", "Caoutchouc pour patins").site
    hits = matching.search(session, q="chambre à air", kind="offer", lat=pallet_site.lat, lon=pallet_site.lon,
                           radius_km=30)
    assert hits
    assert "chambre" in (hits[0].listing.title + hits[0].listing.description).lower()
    assert all(h.distance_km is None or h.distance_km <= 30 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_an_anonymous_listing_is_placed_at_its_commune_centroid(session, demo) -> None:
    offer = session.scalars(select(Listing).where(Listing.kind == "offer")).first()
    offer.site.lat += 0.05  # an exact site away from the centroid
    offer.anonymous = True
    record = matching.to_record(offer)
    assert (record.lat, record.lon) == (offer.site.commune.lat, offer.site.commune.lon)


def test_classify_answers_the_api_shape() -> None:
    result = matching.classify("chutes de chambres à air")
    assert result["material_family"] == "rubber"
    assert 1 <= len(result["suggestions"]) <= 5
    first = result["suggestions"][0]
    assert set(first) == {"code", "label_fr", "label_en", "hazardous", "score"}
