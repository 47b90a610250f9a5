from sqlalchemy import func, select

from matchmaking.models import Listing, ListingStatus, OutboxEvent
from tests.factories import make_firm, make_listing, make_user
from tests.web.conftest import post, sign_in, text


def _member(session, **firm):
    firm = make_firm(session, **firm)
    user = make_user(session, firm)
    return firm, user


def _form(**overrides):
    return {"kind": "offer", "title": "Chutes de chambres à air", "description": "Butyl", "low_code": "16 01 03",
            "material_family": "", "quantity": "15", "unit": "kg", "frequency": "monthly", "site_id": "",
            "price_eur_per_unit": "", "available_from": "", "available_until": "", "action": "publish"} | overrides


def test_declaring_an_offer_publishes_it_and_tells_the_engine(client, session) -> None:
    firm, user = _member(session)
    session.commit()
    sign_in(client, user)
    form = _form(site_id=str(firm.main_site.id))
    response = post(client, "/listings/new", form)
    assert response.status_code == 302
    listing = session.scalars(select(Listing).where(Listing.firm_id == firm.id)).one()
    assert listing.status is ListingStatus.published and listing.low_code == "16 01 03"
    assert listing.material_family and listing.annual_tonnes == 15 * 12 / 1000
    assert session.scalar(select(func.count()).select_from(OutboxEvent)) >= 1
    page = text(client.get(response.headers["Location"]))
    assert "Chutes de chambres à air" in page and "16 01 03" in page
    assert listing.family.label_fr in page and listing.family.label_en not in page


def test_a_draft_is_not_published(client, session) -> None:
    firm, user = _member(session)
    session.commit()
    sign_in(client, user)
    post(client, "/listings/new", _form(action="draft", title="Brouillon de test"))
    listing = session.scalars(select(Listing).where(Listing.firm_id == firm.id)).one()
    assert listing.status is ListingStatus.draft


def test_bad_listing_input_names_each_field_keeps_the_input_and_writes_nothing(client, session) -> None:
    firm, user = _member(session)
    session.commit()
    sign_in(client, user)
    response = post(client, "/listings/new", _form(
        title="", quantity="beaucoup", unit="barrique", frequency="parfois", low_code="99 99 99",
        price_eur_per_unit="-3", available_from="2026-12-01", available_until="2026-01-01",
        description="Ma description gardée",
    ), form_url="/listings/new?kind=offer")
    html = text(response)
    assert response.status_code == 422
    for field in ("title", "quantity", "unit", "frequency", "low_code", "price_eur_per_unit", "available_until"):
        assert f'id="e-{field}"' in html, field
    assert "Ce champ doit être un nombre" in html or "nombre" in html
    assert 'value="beaucoup"' in html and "Ma description gardée" in html
    assert session.scalar(select(func.count()).select_from(Listing).where(Listing.firm_id == firm.id)) == 0


def test_a_hazardous_code_shows_what_it_implies(client, session) -> None:
    firm, user = _member(session)
    session.commit()
    sign_in(client, user)
    response = post(client, "/listings/new", _form(title="Huiles de vidange", low_code="13 02 05*", unit="L",
                                                   quantity="200"))
    assert response.status_code == 302
    listing = session.scalars(select(Listing).where(Listing.firm_id == firm.id)).one()
    assert listing.hazardous
    html = text(client.get(response.headers["Location"]))
    assert "Trackdéchets" in html and "bordereau de suivi des déchets dangereux" in html
    assert "transporteur autorisé" in html
    form = text(client.get(f"/listings/{listing.public_id}/edit"))
    assert 'id="hazard-notice"' in form and 'id="hazard-notice" role="note" hidden' not in form


def test_the_notice_is_in_the_form_but_hidden_for_an_ordinary_code(client, session) -> None:
    _firm, user = _member(session)
    session.commit()
    sign_in(client, user)
    html = text(client.get("/listings/new?kind=offer"))
    assert 'id="hazard-notice" role="note" hidden' in html


def test_the_owner_edits_pauses_and_closes_a_listing(client, session) -> None:
    firm, user = _member(session)
    listing = make_listing(session, firm, title="Palettes cassées", unit="unit", quantity=40)
    session.commit()
    sign_in(client, user)
    form = _form(title="Palettes cassées 80x120", unit="unit", quantity="40", low_code="15 01 03")
    assert post(client, f"/listings/{listing.public_id}/edit", form).status_code == 302
    session.refresh(listing)
    assert listing.title == "Palettes cassées 80x120"
    post(client, f"/listings/{listing.public_id}/status", {"action": "pause"},
         form_url=f"/listings/{listing.public_id}")
    session.refresh(listing)
    assert listing.status is ListingStatus.paused
    post(client, f"/listings/{listing.public_id}/status", {"action": "close"},
         form_url=f"/listings/{listing.public_id}")
    session.refresh(listing)
    assert listing.status is ListingStatus.closed
    assert "Palettes cassées 80x120" in text(client.get("/listings"))


def test_another_firm_gets_404_for_every_change(client, session) -> None:
    owner, _ = _member(session)
    listing = make_listing(session, owner, title="Sciure de chêne")
    _other, intruder = _member(session)
    session.commit()
    sign_in(client, intruder)
    assert client.get(f"/listings/{listing.public_id}/edit").status_code == 404
    token_page = "/listings/new"
    assert post(client, f"/listings/{listing.public_id}/edit", _form(title="Piraté"),
                form_url=token_page).status_code == 404
    assert post(client, f"/listings/{listing.public_id}/status", {"action": "close"},
                form_url=token_page).status_code == 404
    session.refresh(listing)
    assert listing.title == "Sciure de chêne" and listing.status is ListingStatus.published
    # A draft of another firm does not exist for this viewer either.
    listing.status = ListingStatus.draft
    session.commit()
    assert client.get(f"/listings/{listing.public_id}").status_code == 404
    assert client.get("/listings/999999").status_code == 404


def test_an_anonymous_listing_hides_firm_site_and_price_on_every_page(client, session) -> None:
    seller = make_firm(session, name="Laiterie Secrète", commune_insee="53185", address="12 rue Cachée",
                       contact_phone="02 43 99 99 99")
    listing = make_listing(session, seller, title="Lactosérum liquide", anonymous=True, price_eur_per_unit=37,
                           kind="offer", quantity=2, unit="t")
    _buyer, user = _member(session)
    session.commit()
    sign_in(client, user)
    pages = [client.get(f"/listings/{listing.public_id}"), client.get("/"),
             client.get("/search?q=lactosérum&kind=offer&radius_km=200")]
    for response in pages:
        html = text(response)
        assert response.status_code == 200
        for secret in ("Laiterie Secrète", "12 rue Cachée", "02 43 99 99 99", seller.siret, "37 €"):
            assert secret not in html, (secret, response.request.path)
    assert "Lactosérum liquide" in text(pages[0])


def test_title_suggestions_give_codes_family_and_hazard(client, session) -> None:
    _firm, user = _member(session)
    session.commit()
    sign_in(client, user)
    data = client.get("/listings/suggest?q=chambres à air de vélo").get_json()
    assert data["suggestions"] and all({"code", "label", "hazardous"} <= set(s) for s in data["suggestions"])
    assert data["material_family"]
    one = client.get("/listings/suggest?code=130205").get_json()["code"]
    assert one["code"] == "13 02 05" and one["hazardous"] is True
    assert client.get("/listings/suggest?code=zz").get_json()["code"] is None


def test_my_listings_lists_them_by_status(client, session) -> None:
    firm, user = _member(session)
    make_listing(session, firm, title="Annonce publiée")
    paused = make_listing(session, firm, title="Annonce en pause")
    paused.status = ListingStatus.paused
    session.commit()
    sign_in(client, user)
    html = text(client.get("/listings"))
    assert html.index("Annonce publiée") < html.index("Annonce en pause")
