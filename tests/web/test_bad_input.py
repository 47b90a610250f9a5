"""Whatever is typed into any form, the answer is a page, never a server error, and nothing is written
by a refused form."""

import pytest
from sqlalchemy import func, select

from matchmaking.models import Firm, Listing, Site
from matchmaking.services import decisions, matching
from tests.factories import make_firm, make_listing, make_user
from tests.web.conftest import post, sign_in, token

JUNK = ["", "x" * 5000, "<script>alert(1)</script>", "-1", "1e309", "NaN", "12,5,3", "😀 ∞ \u202e",
        "' OR 1=1 --", "2026-02-30"]
FORMS = {
    "/register": ("firm_name", "firm_siret", "firm_naf_code", "firm_postal_code", "firm_commune", "firm_address",
                  "firm_contact_phone", "user_name", "user_email", "user_password", "user_password_confirm"),
    "/sign-in": ("email", "password", "next"),
    "/password/forgot": ("email",),
    "/account": ("current_password", "password", "password_confirm"),
    "/firm/edit": ("name", "naf_code", "contact_name", "contact_email", "contact_phone"),
    "/firm/sites/new": ("name", "address", "postal_code", "commune"),
    "/listings/new": ("kind", "title", "description", "low_code", "material_family", "quantity", "unit",
                      "frequency", "radius_km", "site_id", "price_eur_per_unit", "available_from",
                      "available_until", "reference", "hazardous", "accepts_hazardous", "anonymous", "action"),
}
OK = {200, 302, 400, 404, 409, 422, 429}


def _counts(session):
    session.expire_all()
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in (Firm, Site, Listing))


@pytest.mark.parametrize("junk", JUNK)
def test_junk_in_every_field_of_every_form_never_fails_the_server(client, session, junk) -> None:
    firm = make_firm(session)
    user = make_user(session, firm)
    session.commit()
    sign_in(client, user)
    before = _counts(session)
    for path, fields in FORMS.items():
        form_page = "/listings/new" if path in ("/register", "/sign-in", "/password/forgot") else path
        data = {name: junk for name in fields}
        response = client.post(path, data=data | {"csrf_token": token(client, form_page)})
        assert response.status_code in OK, (path, junk, response.status_code)
    assert _counts(session) == before
    for query in (f"/search?q={junk}&kind={junk}&family={junk}&radius_km={junk}&site_id={junk}",
                  f"/matches?status={junk}", f"/?kind={junk}&page={junk}", f"/listings/suggest?q={junk}&code={junk}",
                  f"/communes?postal_code={junk}"):
        assert client.get(query).status_code in OK, query


def test_a_nul_character_is_refused_before_reaching_the_database(client, session) -> None:
    user = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, user)
    response = post(client, "/listings/new", {"title": "Sciure\x00", "kind": "offer"})
    assert response.status_code == 400
    assert client.get("/search?q=a\x00b").status_code == 400


def test_junk_in_the_exchange_and_decision_forms(client, session) -> None:
    seller, buyer = make_firm(session), make_firm(session, commune_insee="53185")
    offer = make_listing(session, seller, title="Chutes de chambres à air", low_code="16 01 03")
    need = make_listing(session, buyer, kind="need", title="Chambres à air pour patins", quantity=50, unit="kg",
                        radius_km=60)
    users = make_user(session, seller), make_user(session, buyer)
    matching.refresh_matches(session, need.id)
    from matchmaking.models import Match

    match = session.scalars(select(Match).where(Match.offer_id == offer.id, Match.need_id == need.id)).one()
    decisions.accept(session, match, users[0])
    decisions.accept(session, match, users[1])
    session.commit()
    sign_in(client, users[1])
    for junk in JUNK:
        for path, data in ((f"/matches/{match.public_id}/exchanges", {"quantity": junk, "unit": junk, "date": junk}),
                           (f"/matches/{match.public_id}/decision", {"decision": junk}),
                           (f"/listings/{need.public_id}/status", {"action": junk}),
                           ("/notifications/read", {"id": junk, "go": junk})):
            response = post(client, path, data, form_url=f"/matches/{match.public_id}")
            assert response.status_code in OK, (path, junk, response.status_code)
