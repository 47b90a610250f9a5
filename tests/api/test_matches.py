from datetime import date, timedelta

from sqlalchemy import select

from matchmaking.models import AuditLog, Commune, MatchStatus, OutboxEvent
from tests.api.conftest import add_match, published


def _deal(session, make_actor, *, anonymous: bool = True):
    seller, buyer = make_actor(), make_actor(commune_insee="53147")
    site = seller.firm.main_site
    site.lat, site.lon = site.lat + 0.05, site.lon  # the real site, ~5.6 km north of the centroid
    seller.firm.name = "Forges-Secret"
    offer = published(session, seller.firm, anonymous=anonymous, price_eur_per_unit=9, low_code="16 01 03")
    need = published(session, buyer.firm, kind="need", title="Caoutchouc à broyer")
    explanation = {"distance_km": 12.3, "site": {"lat": site.lat, "lon": site.lon}, "firm_name": "Forges-Secret",
                   "words": ["caoutchouc"], "phrase_fr": "Même matière"}
    match = add_match(session, offer, need, score=0.83, distance_km=12.3, explanation=explanation)
    return seller, buyer, offer, need, match


def test_a_listings_matches_are_ranked_and_hide_what_the_other_firm_hides(
        api, session, make_actor, busy_communes) -> None:
    seller, buyer, offer, need, match = _deal(session, make_actor)
    weaker_offer = published(session, make_actor().firm, title="Pneus broyés")
    weaker = add_match(session, weaker_offer, need, score=0.41)
    r = api.get(f"/api/v1/listings/{need.public_id}/matches", headers=buyer.headers)
    assert r.status_code == 200
    ranked = r.get_json()
    assert [m["match_id"] for m in ranked] == [match.public_id, weaker.public_id]
    first = ranked[0]
    assert (first["offer_id"], first["need_id"], first["score"]) == (offer.public_id, need.public_id, 0.83)
    centroid = session.get(Commune, offer.site.commune_insee)
    mine = need.site
    from matchmaking.services.visibility import haversine_km

    assert first["distance_km"] == round(haversine_km(mine.lat, mine.lon, centroid.lat, centroid.lon), 1)
    assert first["explanation"] == {"distance_km": first["distance_km"], "words": ["caoutchouc"],
                                    "phrase_fr": "Même matière"}
    assert first["offer"]["identity_hidden"] is True and first["offer"]["firm"] is None
    assert "Forges-Secret" not in r.data.decode()
    # The match was made with the anonymous offer: the buyer is told its day, not its instant.
    assert first["created_at"] == match.created_at.date().isoformat()
    assert first["offer"]["created_at"] == offer.created_at.date().isoformat()
    assert "T" in first["need"]["created_at"]  # its own listing: to the instant
    own = api.get(f"/api/v1/listings/{offer.public_id}/matches", headers=seller.headers).get_json()
    assert own[0]["need"]["firm"]["name"] == buyer.firm.name and own[0]["distance_km"] == 12.3


def test_the_workflow_interest_then_both_accept_reveals_identities(api, session, make_actor) -> None:
    seller, buyer, offer, _need, match = _deal(session, make_actor)
    base = f"/api/v1/matches/{match.public_id}"
    r = api.post(f"{base}/interest", headers=buyer.headers)
    assert r.status_code == 200
    assert (r.get_json()["status"], r.get_json()["my_decision"], r.get_json()["their_decision"]) == (
        "interested", "interested", "pending")
    assert api.post(f"{base}/accept", headers=seller.headers).get_json()["status"] == "interested"
    r = api.post(f"{base}/accept", headers=buyer.headers)
    body = r.get_json()
    assert body["status"] == "accepted" and body["accepted_at"]
    assert body["offer"]["firm"]["name"] == "Forges-Secret" and body["offer"]["price_eur_per_unit"] == 9
    assert api.get(f"/api/v1/listings/{offer.public_id}", headers=buyer.headers).get_json()["identity_hidden"] is False
    keys = set(session.scalars(select(OutboxEvent.idempotency_key).where(OutboxEvent.kind == "match.decision")))
    assert keys == {f"match.decision:{match.id}:need:interested", f"match.decision:{match.id}:offer:accepted",
                    f"match.decision:{match.id}:need:accepted"}
    assert len(session.scalars(select(AuditLog).where(AuditLog.target_id == match.id)).all()) == 3


def test_invalid_transitions_are_409_problems(api, session, make_actor) -> None:
    seller, buyer, _offer, _need, match = _deal(session, make_actor)
    base = f"/api/v1/matches/{match.public_id}"
    assert api.post(f"{base}/decline", headers=seller.headers).get_json()["status"] == "declined"
    r = api.post(f"{base}/accept", headers=buyer.headers)
    assert r.status_code == 409 and r.get_json()["type"].endswith("conflict") and r.get_json()["detail"]
    assert api.post(f"{base}/exchanges", headers=buyer.headers,
                    json={"quantity": 1, "unit": "t", "date": "2026-01-10"}).status_code == 409


def test_a_decline_says_why_in_one_word(api, session, make_actor) -> None:
    seller, _buyer, _offer, _need, match = _deal(session, make_actor)
    base = f"/api/v1/matches/{match.public_id}"
    refused = api.post(f"{base}/decline?reason=bof", headers=seller.headers)
    assert refused.status_code == 422 and "reason" in refused.get_json()["errors"]
    assert api.post(f"{base}/decline?reason=quality", headers=seller.headers).get_json()["status"] == "declined"
    session.refresh(match)
    assert match.offer_decline_reason == "quality"


def test_a_third_firm_cannot_see_or_act_on_a_match(api, session, make_actor) -> None:
    _seller, _buyer, _offer, _need, match = _deal(session, make_actor)
    third = make_actor()
    base = f"/api/v1/matches/{match.public_id}"
    assert api.get(base, headers=third.headers).status_code == 404
    for action in ("interest", "accept", "decline"):
        assert api.post(f"{base}/{action}", headers=third.headers).status_code == 404
    assert api.post(f"{base}/exchanges", headers=third.headers,
                    json={"quantity": 1, "unit": "t", "date": "2026-01-10"}).status_code == 404
    assert api.get(f"{base}/exchanges", headers=third.headers).status_code == 404
    assert api.get("/api/v1/matches", headers=third.headers).get_json() == []
    assert match.status is MatchStatus.proposed


def test_the_firms_matches_come_newest_day_first_with_their_status(api, session, make_actor) -> None:
    seller, buyer, offer, need, match = _deal(session, make_actor)
    match.created_at -= timedelta(days=1)
    other_need = published(session, make_actor().firm, kind="need", title="Granulats de caoutchouc")
    newer = add_match(session, offer, other_need, score=0.5, status=MatchStatus.declined)
    r = api.get("/api/v1/matches", headers=seller.headers)
    assert [(m["match_id"], m["status"], m["my_side"]) for m in r.get_json()] == [
        (newer.public_id, "declined", "offer"), (match.public_id, "proposed", "offer")]
    assert r.headers["X-Total-Count"] == "2"
    assert [m["match_id"] for m in api.get("/api/v1/matches?status=declined", headers=seller.headers).get_json()] == [
        newer.public_id]
    assert [m["my_side"] for m in api.get("/api/v1/matches", headers=buyer.headers).get_json()] == ["need"]


def test_exchanges_are_recorded_on_accepted_matches_with_tonnes(api, session, make_actor) -> None:
    seller, buyer, _offer, _need, match = _deal(session, make_actor)
    base = f"/api/v1/matches/{match.public_id}"
    api.post(f"{base}/accept", headers=seller.headers)
    api.post(f"{base}/accept", headers=buyer.headers)
    r = api.post(f"{base}/exchanges", headers=buyer.headers,
                 json={"quantity": 750, "unit": "kg", "date": date.today().isoformat()})
    assert r.status_code == 201
    assert (r.get_json()["tonnes"], r.get_json()["match_id"]) == (0.75, match.public_id)
    bad = api.post(f"{base}/exchanges", headers=buyer.headers, json={"quantity": "beaucoup", "unit": "sacs"})
    assert bad.status_code == 422 and set(bad.get_json()["errors"]) == {"quantity", "unit", "date"}
    future = api.post(f"{base}/exchanges", headers=buyer.headers,
                      json={"quantity": 1, "unit": "t", "date": "2999-01-01"})
    assert future.status_code == 422 and "date" in future.get_json()["errors"]
    listed = api.get(f"{base}/exchanges", headers=seller.headers).get_json()
    assert [e["quantity"] for e in listed] == [750]
