import json

from sqlalchemy import select

from matchmaking.models import Commune, Listing, ListingStatus, MatchStatus, OutboxEvent
from tests.api.conftest import add_match, published

OFFER = {"kind": "offer", "title": "Chutes de chambres à air", "description": "Caoutchouc butyle propre",
         "quantity": 15, "unit": "kg", "frequency": "monthly"}


def _classifier(monkeypatch, *scored: tuple[str, float], family: str = "rubber") -> None:
    from matchmaking.services import matching

    suggestions = [{"code": code, "label_fr": "", "label_en": "", "hazardous": False, "score": score}
                   for code, score in scored]
    monkeypatch.setattr(matching, "classify", lambda text, k=5: {"suggestions": suggestions,
                                                                  "material_family": family})


def test_a_listing_is_stored_with_its_derived_fields(api, session, make_actor) -> None:
    actor = make_actor()
    r = api.post("/api/v1/listings", headers=actor.headers, json=OFFER)
    assert r.status_code == 201
    body = r.get_json()
    assert r.headers["Location"].endswith(f"/api/v1/listings/{body['id']}")
    assert body["status"] == "published" and body["mine"] is True and body["identity_hidden"] is False
    assert body["material_family"] == "rubber" and body["hazardous"] is False
    assert body["annual_tonnes"] == 0.18
    assert body["location"]["commune_insee"] == actor.firm.main_site.commune_insee
    assert session.scalar(select(OutboxEvent).where(OutboxEvent.kind == "listing.changed"))


def test_a_code_is_suggested_when_one_stands_out_and_never_on_a_tie(api, make_actor, monkeypatch) -> None:
    actor = make_actor()
    _classifier(monkeypatch, ("16 01 03", 0.6), ("19 12 04", 0.3))
    assert api.post("/api/v1/listings", headers=actor.headers, json=OFFER).get_json()["low_code"] == "16 01 03"
    _classifier(monkeypatch, ("19 12 04", 0.601), ("16 01 03", 0.6))
    body = api.post("/api/v1/listings", headers=actor.headers, json=OFFER).get_json()
    assert body["low_code"] is None and body["material_family"] == "rubber"
    _classifier(monkeypatch, ("16 01 03", 0.1))
    assert api.post("/api/v1/listings", headers=actor.headers, json=OFFER).get_json()["low_code"] is None


def test_a_given_code_wins_and_drafts_stay_unpublished(api, make_actor) -> None:
    actor = make_actor()
    body = api.post("/api/v1/listings", headers=actor.headers,
                    json=OFFER | {"low_code": "200138", "status": "draft", "commune_insee": "53147"}).get_json()
    assert body["low_code"] == "20 01 38" and body["status"] == "draft"
    assert body["location"]["commune_insee"] == "53147"


def test_a_need_gets_a_default_radius(api, make_actor) -> None:
    body = api.post("/api/v1/listings", headers=make_actor().headers,
                    json=OFFER | {"kind": "need", "title": "Caoutchouc à broyer"}).get_json()
    assert body["kind"] == "need" and body["radius_km"] == 50


def test_mine_lists_the_callers_listings_in_every_status(api, session, make_actor) -> None:
    me, other = make_actor(), make_actor()
    draft = api.post("/api/v1/listings", headers=me.headers, json=OFFER | {"status": "draft"}).get_json()
    published(session, me.firm, title="Palettes")
    published(session, other.firm, title="Sciure")
    r = api.get("/api/v1/listings?mine=1", headers=me.headers)
    assert r.headers["X-Total-Count"] == "2"
    assert {item["title"] for item in r.get_json()} == {"Chutes de chambres à air", "Palettes"}
    assert all(item["mine"] for item in r.get_json())
    everyone = api.get("/api/v1/listings", headers=other.headers).get_json()
    assert draft["id"] not in {item["id"] for item in everyone}
    assert {item["title"] for item in everyone} == {"Palettes", "Sciure"}
    assert api.get(f"/api/v1/listings/{draft['id']}", headers=other.headers).status_code == 404
    assert api.get("/api/v1/listings?mine=1&status=draft", headers=me.headers).get_json()[0]["id"] == draft["id"]


def test_listings_are_paged(api, session, make_actor) -> None:
    me = make_actor()
    lots = [published(session, me.firm, title=f"Lot {n}") for n in range(5)]
    r = api.get("/api/v1/listings?per_page=2&page=3", headers=me.headers)
    # Made the same day: in the order of their (random) public ids, not of their making.
    last = max(lots, key=lambda lot: lot.public_id)
    assert r.headers["X-Total-Count"] == "5" and [i["id"] for i in r.get_json()] == [last.public_id]


def test_only_the_owner_changes_or_closes_a_listing_others_get_404(api, session, make_actor) -> None:
    owner, other = make_actor(), make_actor()
    listing = published(session, owner.firm)
    url = f"/api/v1/listings/{listing.public_id}"
    assert api.patch(url, headers=other.headers, json={"title": "Pris"}).status_code == 404
    assert api.delete(url, headers=other.headers).status_code == 404
    assert api.get(f"{url}/matches", headers=other.headers).status_code == 404
    staff = make_actor(role="admin")
    assert api.patch(url, headers=staff.headers, json={"title": "Pris"}).status_code == 404
    assert session.get(Listing, listing.id).title == "Chutes de chambres à air"

    r = api.patch(url, headers=owner.headers, json={"quantity": 40, "status": "paused", "price_eur_per_unit": 2.5})
    assert r.status_code == 200
    assert (r.get_json()["quantity"], r.get_json()["status"], r.get_json()["price_eur_per_unit"]) == (40, "paused", 2.5)
    assert api.patch(url, headers=owner.headers, json={"kind": "need"}).get_json()["errors"]["kind"]
    bad = api.patch(url, headers=owner.headers, json={"quantity": 0, "status": "expired"})
    assert bad.status_code == 422 and set(bad.get_json()["errors"]) == {"quantity", "status"}
    assert api.delete(url, headers=owner.headers).status_code == 204
    session.expire_all()
    assert session.get(Listing, listing.id).status is ListingStatus.closed
    assert api.get(url, headers=other.headers).status_code == 404
    assert api.get(url, headers=owner.headers).get_json()["status"] == "closed"


def _hidden_strings(listing) -> list[str]:
    site, firm = listing.site, listing.firm
    return [firm.name, firm.siret, str(firm.id), "12 rue des Forges", f"{site.lat:.5f}"[:8], "Forges-Secret"]


def _anonymous_offer(session, seller):
    site = seller.firm.main_site
    site.lat, site.lon = site.lat + 0.05, site.lon + 0.04  # the real site, ~6 km off the centroid
    site.address = "12 rue des Forges"
    seller.firm.name = "Forges-Secret"
    return published(session, seller.firm, anonymous=True, price_eur_per_unit=12.5, reference="REF-FORGES-1")


def assert_hidden(body: dict, listing, session) -> None:
    commune = session.get(Commune, listing.site.commune_insee)
    assert body["identity_hidden"] is True and body["firm"] is None and body["price_eur_per_unit"] is None
    assert body["reference"] is None and body["site_id"] is None
    assert body["location"] == {"commune_insee": commune.insee, "commune": commune.name,
                                "postal_code": commune.postal_codes.split()[0], "lat": commune.lat,
                                "lon": commune.lon, "address": None, "precision": "commune"}


def test_an_anonymous_listing_reveals_nothing_to_a_third_firm_through_get_or_list(
        api, session, make_actor, busy_communes) -> None:
    seller, third = make_actor(), make_actor()
    listing = _anonymous_offer(session, seller)
    secrets = _hidden_strings(listing)
    got = api.get(f"/api/v1/listings/{listing.public_id}", headers=third.headers)
    listed = api.get("/api/v1/listings", headers=third.headers)
    assert_hidden(got.get_json(), listing, session)
    for raw in (got.data.decode(), listed.data.decode()):
        assert not [s for s in secrets[:2] + secrets[3:] if s in raw]
    owner = api.get(f"/api/v1/listings/{listing.public_id}", headers=seller.headers).get_json()
    assert owner["firm"]["name"] == "Forges-Secret" and owner["price_eur_per_unit"] == 12.5
    assert owner["location"]["address"] == "12 rue des Forges" and owner["reference"] == "REF-FORGES-1"


def test_an_accepted_match_reveals_the_listing_to_the_partner_only(api, session, make_actor, busy_communes) -> None:
    seller, buyer, third = make_actor(), make_actor(), make_actor()
    listing = _anonymous_offer(session, seller)
    need = published(session, buyer.firm, kind="need", title="Caoutchouc")
    match = add_match(session, listing, need, status=MatchStatus.interested)
    url = f"/api/v1/listings/{listing.public_id}"
    assert api.get(url, headers=buyer.headers).get_json()["identity_hidden"] is True
    match.status = MatchStatus.accepted
    session.commit()
    revealed = api.get(url, headers=buyer.headers).get_json()
    assert revealed["firm"]["name"] == "Forges-Secret" and revealed["price_eur_per_unit"] == 12.5
    assert revealed["location"]["precision"] == "site" and revealed["reference"] is None
    assert_hidden(api.get(url, headers=third.headers).get_json(), listing, session)


def test_a_public_listing_shows_its_firm_but_not_its_contacts(api, session, make_actor) -> None:
    seller, buyer = make_actor(), make_actor()
    seller.firm.contact_email = "contact@forges.example.fr"
    listing = published(session, seller.firm)
    body = api.get(f"/api/v1/listings/{listing.public_id}", headers=buyer.headers).get_json()
    assert body["firm"]["name"] == seller.firm.name and body["firm"]["contact_email"] is None
    assert "contact@forges" not in json.dumps(body)


def test_the_firm_says_whether_the_ccma_verified_it_but_never_on_an_anonymous_listing(
        api, session, make_actor, busy_communes) -> None:
    from matchmaking.models import utcnow

    seller, buyer = make_actor(), make_actor()
    named = published(session, seller.firm)
    hidden = published(session, seller.firm, title="Copeaux", anonymous=True)
    assert api.get(f"/api/v1/listings/{named.public_id}", headers=buyer.headers).get_json()["firm"]["verified"] is False
    seller.firm.verified_at = utcnow()
    session.commit()
    assert api.get(f"/api/v1/listings/{named.public_id}", headers=buyer.headers).get_json()["firm"]["verified"] is True
    anonymous = api.get(f"/api/v1/listings/{hidden.public_id}", headers=buyer.headers)
    assert anonymous.get_json()["firm"] is None and "verified" not in anonymous.data.decode()
    assert api.get("/api/v1/me", headers=seller.headers).get_json()["firm"]["verified"] is True
