"""Search, the match inbox, decisions up to revealed contacts, exchanges, notifications."""

from sqlalchemy import select

from matchmaking.models import Exchange, Match, MatchStatus, Notification
from matchmaking.services import matching, queries
from tests.factories import make_firm, make_listing, make_user
from tests.web.conftest import post, sign_in, text


def _bike_shop_and_pallet_maker(session, *, anonymous=False):
    shop = make_firm(session, name="Cycles du Mont", commune_insee="53185", contact_name="Lucie Hervé",
                     contact_email="cycles@example.fr", contact_phone="02 43 85 42 82", address="11 Grande Rue")
    maker = make_firm(session, name="Palettes du Pail", commune_insee="53271", contact_name="Sandrine Coupé",
                      contact_email="palettes@example.fr", contact_phone="02 43 39 05 97")
    offer = make_listing(session, shop, title="Chutes de chambres à air", description="Butyl de vélo, 15 kg/mois",
                         low_code="16 01 03", quantity=15, unit="kg", frequency="monthly", anonymous=anonymous,
                         price_eur_per_unit=0)
    need = make_listing(session, maker, kind="need", title="Caoutchouc pour patins de palettes",
                        description="chutes de caoutchouc, chambres à air", quantity=50, unit="kg",
                        frequency="monthly", radius_km=40)
    users = {"shop": make_user(session, shop), "maker": make_user(session, maker)}
    matching.refresh_matches(session, need.id)
    session.commit()
    match = session.scalars(select(Match).where(Match.offer_id == offer.id, Match.need_id == need.id)).one()
    return offer, need, match, users


def test_search_finds_the_inner_tubes_with_distance_score_and_map_data(client, session) -> None:
    offer, _need, _match, users = _bike_shop_and_pallet_maker(session)
    sign_in(client, users["maker"])
    response = client.get("/search?q=caoutchouc&kind=offer&radius_km=50")
    html = text(response)
    assert response.status_code == 200
    assert "Chutes de chambres à air" in html and "Cycles du Mont" in html
    assert " km" in html and 'data-lat="' in html and 'id="map"' in html
    assert "tile.openstreetmap.org" in html
    assert "Voir la mise en relation" in html


def test_search_answers_bad_parameters_with_reasons_not_errors(client, session) -> None:
    firm = make_firm(session)
    from matchmaking.services import sites

    sites.add_site(session, firm, {"name": "Dépôt", "commune_insee": "53185"})
    user = make_user(session, firm)
    session.commit()
    sign_in(client, user)
    response = client.get("/search?q=bois&kind=zzz&family=nope&radius_km=-5&site_id=999999")
    html = text(response)
    assert response.status_code == 422
    for field in ("kind", "family", "radius_km", "site_id"):
        assert f'id="e-{field}"' in html, field
    assert client.get("/search").status_code == 200


def test_the_inbox_explains_the_match_in_plain_french(client, session) -> None:
    _offer, _need, match, users = _bike_shop_and_pallet_maker(session)
    sign_in(client, users["maker"])
    html = text(client.get("/matches"))
    assert "Chutes de chambres à air" in html
    assert " km" in html and ("même" in html or "mots communs" in html or "filière" in html)
    assert f"/matches/{match.public_id}" in html
    detail = text(client.get(f"/matches/{match.public_id}"))
    assert "Pourquoi cette mise en relation" in detail and "Je suis intéressé" in detail


def test_interest_then_acceptance_by_both_reveals_each_others_contact(client, app, session) -> None:
    _offer, _need, match, users = _bike_shop_and_pallet_maker(session, anonymous=True)
    sign_in(client, users["maker"])
    before = text(client.get(f"/matches/{match.public_id}"))
    assert "Cycles du Mont" not in before and "02 43 85 42 82" not in before and "11 Grande Rue" not in before
    assert post(client, f"/matches/{match.public_id}/decision", {"decision": "interested"},
                form_url=f"/matches/{match.public_id}").status_code == 302
    session.refresh(match)
    assert match.status is MatchStatus.interested

    seller = app.test_client()
    sign_in(seller, users["shop"])
    page = text(seller.get(f"/matches/{match.public_id}"))
    assert "intéressé" in page
    post(seller, f"/matches/{match.public_id}/decision", {"decision": "accepted"},
         form_url=f"/matches/{match.public_id}")
    post(client, f"/matches/{match.public_id}/decision", {"decision": "accepted"},
         form_url=f"/matches/{match.public_id}")
    session.refresh(match)
    assert match.status is MatchStatus.accepted
    buyer_view = text(client.get(f"/matches/{match.public_id}"))
    seller_view = text(seller.get(f"/matches/{match.public_id}"))
    assert "Cycles du Mont" in buyer_view and "02 43 85 42 82" in buyer_view and "cycles@example.fr" in buyer_view
    assert "Palettes du Pail" in seller_view and "palettes@example.fr" in seller_view


def test_recording_an_exchange_checks_its_fields(client, app, session) -> None:
    _offer, _need, match, users = _bike_shop_and_pallet_maker(session)
    from matchmaking.services import decisions

    decisions.accept(session, match, users["shop"])
    decisions.accept(session, match, users["maker"])
    session.commit()
    sign_in(client, users["maker"])
    bad = post(client, f"/matches/{match.public_id}/exchanges", {"quantity": "-2", "unit": "kg", "date": "2099-01-01"},
               form_url=f"/matches/{match.public_id}")
    html = text(bad)
    assert bad.status_code == 422 and 'id="e-quantity"' in html and 'id="e-date"' in html and 'value="-2"' in html
    assert session.scalar(select(Exchange.id).where(Exchange.match_id == match.id)) is None
    good = post(client, f"/matches/{match.public_id}/exchanges",
                {"quantity": "14,5", "unit": "kg", "date": "2026-10-02"},
                form_url=f"/matches/{match.public_id}")
    assert good.status_code == 302
    exchange = session.scalars(select(Exchange).where(Exchange.match_id == match.id)).one()
    assert exchange.quantity == 14.5


def test_a_match_of_other_firms_is_404(client, session) -> None:
    _offer, _need, match, _users = _bike_shop_and_pallet_maker(session)
    outsider = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, outsider)
    assert client.get(f"/matches/{match.public_id}").status_code == 404
    assert post(client, f"/matches/{match.public_id}/decision", {"decision": "accepted"},
                form_url="/matches").status_code == 404
    session.refresh(match)
    assert match.status is MatchStatus.proposed


def test_notifications_list_with_unread_count_in_the_header(client, session) -> None:
    _offer, _need, match, users = _bike_shop_and_pallet_maker(session)
    session.add(Notification(user=users["maker"], kind="match.found", dedup_key=f"match.found:{match.id}",
                             match_id=match.id, payload={"listing_title": "Caoutchouc pour patins de palettes",
                                                         "other_title": "Chutes de chambres à air",
                                                         "other_commune": "Pré-en-Pail-Saint-Samson"}))
    session.commit()
    sign_in(client, users["maker"])
    html = text(client.get("/my"))
    assert '<span class="count"' in html
    notices = text(client.get("/notifications"))
    assert "Nouvelle mise en relation pour votre annonce « Caoutchouc pour patins de palettes »" in notices
    assert "Pré-en-Pail-Saint-Samson" in notices
    post(client, "/notifications/read", {}, form_url="/notifications")
    assert '<span class="count"' not in text(client.get("/my"))


def test_a_declined_match_cannot_be_accepted_and_says_so(client, session) -> None:
    _offer, _need, match, users = _bike_shop_and_pallet_maker(session)
    sign_in(client, users["maker"])
    post(client, f"/matches/{match.public_id}/decision", {"decision": "declined"},
         form_url=f"/matches/{match.public_id}")
    response = post(client, f"/matches/{match.public_id}/decision", {"decision": "accepted"}, form_url="/matches")
    assert response.status_code == 302
    assert "plus ouverte" in text(client.get(response.headers["Location"]))
    session.refresh(match)
    assert match.status is MatchStatus.declined


def test_declining_takes_one_click_that_says_why(client, session) -> None:
    _offer, _need, match, users = _bike_shop_and_pallet_maker(session)
    sign_in(client, users["maker"])
    page = text(client.get(f"/matches/{match.public_id}"))
    for label in ("Pas la bonne matière", "Trop loin", "Quantité trop faible", "Qualité inadaptée", "Autre raison"):
        assert label in page
    post(client, f"/matches/{match.public_id}/decision", {"decision": "declined", "reason": "too_small"},
         form_url=f"/matches/{match.public_id}")
    session.refresh(match)
    assert match.status is MatchStatus.declined and match.need_decline_reason == "too_small"


def test_the_inbox_comes_in_pages_accepted_first_then_by_score(client, session) -> None:
    from matchmaking.web.matches import INBOX_PAGE

    maker = make_firm(session, name="Palettes du Pail", commune_insee="53271")
    need = make_listing(session, maker, kind="need", title="Caoutchouc", radius_km=80)
    user = make_user(session, maker)
    shop = make_firm(session, commune_insee="53185")
    offers = [make_listing(session, shop, title=f"Chutes de caoutchouc n°{i}") for i in range(INBOX_PAGE + 3)]
    session.flush()
    for i, offer in enumerate(offers):  # scores 0.50 … 0.77; the lowest one accepted by both
        session.add(Match(offer=offer, need=need, score=0.5 + i / 100, distance_km=5.0, explanation={},
                          status=MatchStatus.accepted if i == 0 else MatchStatus.proposed))
    session.commit()
    sign_in(client, user)
    first, second = text(client.get("/matches")), text(client.get("/matches?page=2"))
    assert "Page 1 of 2" in first or "Page 1 sur 2" in first
    assert first.index("n°0<") < first.index(f"n°{INBOX_PAGE + 2}<") < first.index(f"n°{INBOX_PAGE + 1}<")
    assert sum(f"n°{i}<" in first for i in range(INBOX_PAGE + 3)) == INBOX_PAGE
    assert sorted(i for i in range(INBOX_PAGE + 3) if f"n°{i}<" in second) == [1, 2, 3]
    assert client.get("/matches?page=abc").status_code == 200


def test_matches_under_the_threshold_stay_out_of_the_pages_until_acted_on(client, session) -> None:
    offer, need, strong, users = _bike_shop_and_pallet_maker(session)
    other = make_firm(session, name="Fonderie du Pail")
    odd = make_listing(session, other, title="Sable de fonderie", low_code="10 09 08", quantity=2, unit="t")
    below = queries.shown_threshold() / 2
    weak = Match(offer=odd, need=need, score=below, explanation={})
    session.add(weak)
    session.commit()
    sign_in(client, users["maker"])

    inbox = text(client.get("/matches"))
    assert f"/matches/{strong.public_id}" in inbox and f"/matches/{weak.public_id}" not in inbox
    assert "1 piste trop incertaine" in inbox
    # Asking for it changes nothing: below the threshold nothing is shown.
    assert f"/matches/{weak.public_id}" not in text(client.get("/matches?weak=1"))
    assert "Piste faible" not in inbox and any(label in inbox for label in ("Bonne piste", "Très bonne piste"))
    assert f"/matches/{weak.public_id}" not in text(client.get("/my"))
    assert f"/matches/{weak.public_id}" not in text(client.get(f"/listings/{need.public_id}"))
    # Reachable all the same, and once a firm has acted on it, it is shown.
    assert client.get(f"/matches/{weak.public_id}").status_code == 200
    post(client, f"/matches/{weak.public_id}/decision", {"decision": "interested"},
         form_url=f"/matches/{weak.public_id}")
    inbox = text(client.get("/matches"))
    assert f"/matches/{weak.public_id}" in inbox and "piste trop incertaine" not in inbox
