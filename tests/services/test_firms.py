import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from matchmaking.models import Firm, Site, User
from matchmaking.services import firms, users
from matchmaking.services.errors import ValidationError
from tests.factories import luhn_siret, make_firm


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_a_firm_gets_its_main_site_at_the_commune_centroid(session) -> None:
    firm = make_firm(session, commune_insee="53271", address="ZA des Sablons")
    assert firm.main_site is not None
    assert firm.main_site.commune.name == "Villaines-la-Juhel"
    assert firm.main_site.address == "ZA des Sablons"
    assert firm.main_site.lat == pytest.approx(48.339, abs=0.01)


def test_a_commune_can_be_given_by_postal_code_and_name(session) -> None:
    firm = make_firm(session, commune_insee=None, postal_code="53700", commune="villaines la juhel")
    assert firm.main_site.commune_insee == "53271"


def test_bad_firm_input_names_every_field_and_writes_nothing(session) -> None:
    before = (count(session, Firm), count(session, Site))
    with pytest.raises(ValidationError) as info:
        firms.register_firm(
            session, {"name": "", "siret": "12345678901234", "naf_code": "bois", "commune_insee": "75056"}
        )
    assert set(info.value.errors) == {"name", "siret", "naf_code", "commune_insee"}
    assert (count(session, Firm), count(session, Site)) == before


def test_messages_are_french_by_default_and_english_on_request(session) -> None:
    with pytest.raises(ValidationError) as info:
        firms.register_firm(session, {"name": "X", "siret": "73282932000075", "commune_insee": "53271"})
    with force_locale("fr"):
        assert "clé" in info.value.messages()["siret"] or "contrôle" in info.value.messages()["siret"]
    with force_locale("en"):
        assert "check digit" in info.value.messages()["siret"]


def test_a_siret_is_registered_once(session) -> None:
    siret = luhn_siret("8000000000001")
    make_firm(session, siret=siret)
    with pytest.raises(ValidationError) as info:
        make_firm(session, siret=siret)
    assert "siret" in info.value.errors


def test_users_have_argon2_hashes_and_unique_emails(session) -> None:
    firm = make_firm(session)
    user = users.create_user(session, email="Anne@Example.fr", password="une phrase longue", firm=firm)
    assert user.email == "anne@example.fr"
    assert user.password_hash.startswith("$argon2id$")
    assert users.authenticate(session, "ANNE@example.fr", "une phrase longue") is user
    assert users.authenticate(session, "anne@example.fr", "wrong password") is None
    with pytest.raises(ValidationError) as info:
        users.create_user(session, email="anne@example.fr", password="short", firm=firm)
    assert set(info.value.errors) == {"email", "password"}
    assert count(session, User) == 1
