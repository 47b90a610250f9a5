from datetime import UTC, datetime

import pytest

from matchmaking.models import Commune, ListingStatus, Match, MatchStatus
from matchmaking.services import visibility
from matchmaking.services.errors import NotFound
from tests.factories import make_firm, make_listing, make_user


def _pair(session):
    seller, buyer, third = make_firm(session), make_firm(session, commune_insee="53147"), make_firm(session)
    # The seller's real site sits 3 km off its commune centroid.
    seller.main_site.lat += 0.027
    seller.main_site.address = "12 rue des Forges"
    offer = make_listing(session, seller, anonymous=True, price_eur_per_unit=12)
    need = make_listing(session, buyer, kind="need", title="Caoutchouc à recycler")
    users = {f: make_user(session, firm) for f, firm in (("seller", seller), ("buyer", buyer), ("third", third))}
    return offer, need, users


def test_an_anonymous_listing_shows_only_its_commune_to_another_firm(session, busy_communes) -> None:
    offer, _, users = _pair(session)
    view = visibility.audience(session, users["third"]).view(offer)
    commune = session.get(Commune, offer.site.commune_insee)
    assert view.identity_hidden and view.firm is None and view.price_eur_per_unit is None
    assert (view.place.lat, view.place.lon, view.place.address) == (commune.lat, commune.lon, None)
    assert view.place.precision == "commune" and view.reference is None and view.site_id is None


def test_the_owner_and_facilitators_see_everything(session) -> None:
    offer, _, users = _pair(session)
    facilitator = make_user(session, role="facilitator")
    for user in (users["seller"], facilitator):
        view = visibility.audience(session, user).view(offer)
        assert not view.identity_hidden
        assert view.firm is not None and view.firm.id == offer.firm_id
        assert view.price_eur_per_unit == 12 and view.place.address == "12 rue des Forges"


def test_analysts_and_visitors_see_what_a_third_firm_sees(session) -> None:
    offer, _, _ = _pair(session)
    for user in (make_user(session, role="analyst"), None):
        assert visibility.audience(session, user).view(offer).identity_hidden


def test_only_a_match_accepted_by_both_reveals_the_firm(session) -> None:
    offer, need, users = _pair(session)
    match = Match(offer=offer, need=need, score=0.8, distance_km=4.2)
    session.add(match)
    session.flush()
    for status in (MatchStatus.proposed, MatchStatus.interested, MatchStatus.declined):
        match.status = status
        session.flush()
        assert visibility.audience(session, users["buyer"]).shows_identity(offer) is False
    match.status = MatchStatus.accepted
    session.flush()
    assert visibility.audience(session, users["buyer"]).shows_identity(offer) is True
    assert visibility.audience(session, users["third"]).shows_identity(offer) is False


def test_distances_to_a_hidden_listing_start_from_the_commune_centroid(session, busy_communes) -> None:
    offer, _, users = _pair(session)
    commune = session.get(Commune, offer.site.commune_insee)
    third = visibility.audience(session, users["third"])
    owner = visibility.audience(session, users["seller"])
    assert third.distance_km(offer, commune.lat, commune.lon) == 0.0
    assert owner.distance_km(offer, commune.lat, commune.lon) == pytest.approx(3.0, abs=0.1)


def test_explanations_lose_what_locates_a_hidden_firm(session) -> None:
    offer, _, users = _pair(session)
    explanation = {"distance_km": 3.1, "words": ["caoutchouc"], "geo": {"distance_km": 3.1, "lat": 48.3},
                   "firm_name": "Forges"}
    cleaned = visibility.audience(session, users["third"]).explanation(explanation, offer, 0.0)
    assert cleaned == {"distance_km": 0.0, "words": ["caoutchouc"], "geo": {"distance_km": 0.0}}


def test_drafts_of_other_firms_do_not_exist_for_them(session) -> None:
    offer, _, users = _pair(session)
    offer.status = ListingStatus.closed
    session.flush()
    with pytest.raises(NotFound):
        visibility.visible_listing(session, users["third"], offer.public_id)
    assert visibility.visible_listing(session, users["seller"], offer.public_id) is offer


def test_only_the_owner_firm_owns_a_listing(session) -> None:
    offer, _, users = _pair(session)
    for user in (users["third"], make_user(session, role="admin"), None):
        with pytest.raises(NotFound):
            visibility.own_listing(session, user, offer.public_id)
    assert visibility.own_listing(session, users["seller"], offer.public_id) is offer


def test_contact_details_wait_for_an_accepted_match_even_on_open_listings(session) -> None:
    offer, need, users = _pair(session)
    offer.firm.contact_email = "atelier@example.fr"
    offer.anonymous = False
    session.flush()
    view = visibility.audience(session, users["buyer"]).view(offer)
    assert view.firm is not None and view.firm.name == offer.firm.name and view.firm.contact_email is None
    session.add(Match(offer=offer, need=need, score=0.8, status=MatchStatus.accepted))
    session.flush()
    view = visibility.audience(session, users["buyer"]).view(offer)
    assert view.firm is not None and view.firm.contact_email == "atelier@example.fr"


def test_another_firm_sees_an_anonymous_listings_times_to_the_day_its_owner_and_staff_to_the_instant(
        session) -> None:
    offer, need, users = _pair(session)
    session.flush()
    instant = offer.created_at
    for user in (users["third"], users["buyer"], make_user(session, role="analyst"), None):
        view = visibility.audience(session, user).view(offer)
        assert view.created_at == instant.astimezone(UTC).date() and not isinstance(view.created_at, datetime)
        assert not isinstance(view.updated_at, datetime) and not isinstance(view.published_at, datetime)
    for user in (users["seller"], make_user(session, role="facilitator"), make_user(session, role="admin")):
        assert visibility.audience(session, user).view(offer).created_at == instant
    # A named listing's times are its own firm's to show; a revealed partner sees the instant too.
    assert visibility.audience(session, users["third"]).view(need).created_at == need.created_at
    match = Match(offer=offer, need=need, score=0.8, distance_km=4.2, status=MatchStatus.accepted)
    session.add(match)
    session.flush()
    assert visibility.audience(session, users["buyer"]).view(offer).created_at == instant


def test_a_listing_is_known_by_its_public_id_and_an_integer_id_finds_nothing(session) -> None:
    offer, _, users = _pair(session)
    session.flush()
    view = visibility.audience(session, users["third"]).view(offer)
    assert view.id == offer.public_id and len(view.id) == 16 and not view.id.isdigit()
    assert visibility.visible_listing(session, users["third"], offer.public_id) is offer
    with pytest.raises(NotFound):
        visibility.visible_listing(session, users["third"], str(offer.id))
