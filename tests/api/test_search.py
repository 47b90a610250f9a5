from matchmaking.models import Commune, MatchStatus
from tests.api.conftest import add_match, published


def _two_hidden_offers(session, make_actor):
    """Two anonymous offers in one commune whose real sites lie on either side of its centroid."""
    near_site, far_site = make_actor(), make_actor()
    near_site.firm.main_site.lat += 0.01  # ~1 km north
    far_site.firm.main_site.lat -= 0.2  # ~22 km south
    near_site.firm.name, far_site.firm.name = "Caché-Nord", "Caché-Sud"
    a = published(session, near_site.firm, anonymous=True)
    b = published(session, far_site.firm, anonymous=True)
    return a, b, far_site


def test_search_ranks_listings_with_score_and_distance(api, session, make_actor) -> None:
    seller, buyer = make_actor(), make_actor()
    published(session, seller.firm, title="Chutes de chambres à air", description="caoutchouc butyle")
    published(session, seller.firm, title="Sciure de hêtre", material_family="wood")
    r = api.get("/api/v1/search?q=chambres%20%C3%A0%20air&kind=offer", headers=buyer.headers)
    assert r.status_code == 200
    hits = r.get_json()
    assert hits and hits[0]["title"] == "Chutes de chambres à air"
    assert 0 <= hits[0]["score"] <= 1 and hits[0]["distance_km"] is not None
    assert all(hit["score"] >= later["score"] for hit, later in zip(hits, hits[1:], strict=False))


def test_anonymous_listings_sit_at_their_commune_centroid_for_distance_order_and_radius(
        api, session, make_actor, busy_communes) -> None:
    a, b, _ = _two_hidden_offers(session, make_actor)
    third = make_actor(commune_insee="53147")
    centroid = session.get(Commune, a.site.commune_insee)
    real_south = f"{b.site.lat},{b.site.lon}"
    hits = api.get(f"/api/v1/search?q=chambres%20air&near={centroid.insee}", headers=third.headers).get_json()
    found = {hit["id"]: hit for hit in hits}
    assert {a.public_id, b.public_id} <= set(found)
    # Same text, same commune: nothing tells the two apart, neither distance nor score.
    assert found[a.public_id]["distance_km"] == found[b.public_id]["distance_km"] == 0.0
    assert found[a.public_id]["score"] == found[b.public_id]["score"]
    for hit in (found[a.public_id], found[b.public_id]):
        assert hit["firm"] is None and hit["price_eur_per_unit"] is None
        assert (hit["location"]["lat"], hit["location"]["lon"]) == (centroid.lat, centroid.lon)
    # A small circle around the real southern site finds nothing: the radius uses the centroid.
    around_real = api.get(f"/api/v1/search?q=chambres%20air&near={real_south}&radius_km=5",
                          headers=third.headers).get_json()
    assert b.public_id not in {hit["id"] for hit in around_real}
    raw = api.get(f"/api/v1/search?q=chambres%20air&near={real_south}", headers=third.headers).data.decode()
    assert "Caché-Sud" not in raw and "Caché-Nord" not in raw


def test_a_partner_with_an_accepted_match_gets_real_distances(api, session, make_actor) -> None:
    _a, b, _far = _two_hidden_offers(session, make_actor)
    buyer = make_actor()
    need = published(session, buyer.firm, kind="need", title="Caoutchouc")
    add_match(session, b, need, status=MatchStatus.accepted)
    hits = api.get(f"/api/v1/search?q=chambres%20air&near={b.site.lat},{b.site.lon}",
                   headers=buyer.headers).get_json()
    mine = next(hit for hit in hits if hit["id"] == b.public_id)
    assert mine["distance_km"] == 0.0 and mine["firm"]["name"] == "Caché-Sud"


def test_search_leaves_out_the_callers_own_listings_and_needs_a_query(api, session, make_actor) -> None:
    me = make_actor()
    published(session, me.firm)
    assert api.get("/api/v1/search?q=chambres%20air", headers=me.headers).get_json() == []
    r = api.get("/api/v1/search", headers=me.headers)
    assert r.status_code == 422 and "q" in r.get_json()["errors"]


def test_classify_suggests_at_most_five_codes_best_first(api, make_actor) -> None:
    actor = make_actor()
    r = api.post("/api/v1/classify", headers=actor.headers, json={"text": "chutes de chambres à air"})
    assert r.status_code == 200
    body = r.get_json()
    assert body["material_family"] == "rubber"
    assert 1 <= len(body["suggestions"]) <= 5
    assert "16 01 03" in [s["code"] for s in body["suggestions"]]
    assert {"code", "label_fr", "label_en", "hazardous", "score"} == set(body["suggestions"][0])
    scores = [s["score"] for s in body["suggestions"]]
    assert scores == sorted(scores, reverse=True)
    for bad in ({"text": ""}, {"text": 3}, {}, {"text": "x" * 3000}):
        assert api.post("/api/v1/classify", headers=actor.headers, json=bad).get_json()["errors"]["text"]
