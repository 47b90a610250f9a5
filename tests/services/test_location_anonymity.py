"""k-anonymity of an anonymous listing's place: a commune with fewer than k firms does not name it."""

from __future__ import annotations

from typing import Any

from matchmaking.models import Match
from matchmaking.services import listings, notifications, tokens, visibility
from tests.factories import make_firm, make_user

# Saint-Pierre-des-Nids: in the demo, only one firm has a site there.
LONELY = "53246"
CROWDED = "53271"  # Villaines-la-Juhel


def _territory(session: Any) -> dict[str, Any]:
    """Firm A alone in its commune, five firms in Villaines-la-Juhel, C among them."""
    firm_a = make_firm(session, commune_insee=LONELY)
    others = [make_firm(session, commune_insee=CROWDED) for _ in range(5)]
    offer = listings.create_listing(session, firm_a, {
        "kind": "offer", "title": "Sciure de hêtre", "quantity": 3, "unit": "t", "frequency": "monthly",
        "anonymous": True})
    crowded_offer = listings.create_listing(session, others[1], {
        "kind": "offer", "title": "Copeaux de chêne", "quantity": 3, "unit": "t", "frequency": "monthly",
        "anonymous": True})
    need = listings.create_listing(session, others[0], {
        "kind": "need", "title": "Litière pour chevaux", "quantity": 3, "unit": "t", "frequency": "monthly"})
    owner = make_user(session, firm=firm_a)
    third = make_user(session, firm=others[0])
    return {"offer": offer, "crowded_offer": crowded_offer, "need": need, "owner": owner, "third": third}


def test_a_firm_alone_in_its_commune_is_shown_at_the_territory(session) -> None:
    world = _territory(session)
    seen = visibility.audience(session, world["third"], k=5)
    view = seen.view(world["offer"])
    assert view.place.precision == "territory"
    assert (view.place.commune, view.place.commune_insee, view.place.postal_code) == (
        visibility.TERRITORY_NAME, None, None)
    commune = world["offer"].site.commune
    assert (view.place.lat, view.place.lon) != (commune.lat, commune.lon)
    assert seen.point(world["offer"]) == (view.place.lat, view.place.lon)
    # Distances are told to the territory's 5 km, never to the lonely commune's centroid.
    distance = seen.distance_between(world["need"], world["offer"])
    assert distance % 5 == 0 and distance >= 5


def test_a_commune_with_k_firms_is_shown_as_the_commune(session) -> None:
    world = _territory(session)
    view = visibility.audience(session, world["third"], k=5).view(world["crowded_offer"])
    assert (view.place.precision, view.place.commune_insee) == ("commune", CROWDED)


def test_the_territory_itself_gives_way_to_the_department_when_it_has_fewer_than_k_firms(session) -> None:
    world = _territory(session)
    make_firm(session, commune_insee="53001")  # Ahuillé, in Mayenne outside the CCMA: 7 firms there, 6 in the CCMA
    view = visibility.audience(session, world["third"], k=7).view(world["offer"])
    assert (view.place.precision, view.place.commune) == ("department", "Mayenne")
    view = visibility.audience(session, world["third"], k=8).view(world["offer"])
    assert view.place.precision == "region"


def test_the_owner_is_told_what_others_see_and_keeps_the_exact_site(session) -> None:
    world = _territory(session)
    view = visibility.audience(session, world["owner"], k=5).view(world["offer"])
    assert view.place.precision == "site"
    assert view.public_place is not None and view.public_place.commune == visibility.TERRITORY_NAME


def test_the_api_and_the_notice_never_name_the_lonely_commune(client, session) -> None:
    world = _territory(session)
    match = Match(offer=world["offer"], need=world["need"], score=0.7, distance_km=12.3,
                  explanation={"evidence": {"distance_km": 12.3}, "phrase_fr": "même matière : sciure · 12 km"})
    session.add(match)
    session.flush()
    payload = notifications.match_payload(session, match, world["third"])
    assert payload["other_commune"] == visibility.TERRITORY_NAME
    assert payload["distance_km"] % 5 == 0
    data = visibility.audience(session, world["third"]).explanation(match.explanation, world["offer"], 15.0)
    assert data["evidence"]["distance_km"] == 15.0 and "12 km" not in data["phrase_fr"]
    token = tokens.issue(session, world["third"])
    offer_id = world["offer"].public_id
    session.commit()
    response = client.get(f"/api/v1/listings/{offer_id}", headers={"Authorization": f"Bearer {token}"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Saint-Pierre-des-Nids" not in body and LONELY not in body
    assert response.get_json()["location"]["commune"] == visibility.TERRITORY_NAME
