import pytest
from sqlalchemy import func, select

from matchmaking.models import Frequency, Kind, Listing, ListingStatus, Unit
from matchmaking.services import listings
from matchmaking.services.errors import ValidationError
from tests.factories import make_firm, make_listing


def listing_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Listing))


def test_a_listing_is_published_at_the_firm_main_site_with_annual_tonnes(session) -> None:
    firm = make_firm(session)
    listing = make_listing(session, firm, quantity=15, unit="kg", frequency="monthly", low_code="160103")
    assert listing.status is ListingStatus.published
    assert listing.site is firm.main_site
    assert listing.low_code == "16 01 03"
    assert listing.material_family == "rubber"
    assert listing.lot_tonnes == pytest.approx(0.015)
    assert listing.annual_tonnes == pytest.approx(0.18)
    assert (listing.unit, listing.frequency, listing.kind) == (Unit.kg, Frequency.monthly, Kind.offer)


def test_volumes_become_tonnes_through_the_family_density(session) -> None:
    firm = make_firm(session)
    listing = make_listing(session, firm, quantity=10, unit="m3", frequency="yearly", material_family="wood")
    density = listing.family.density_t_per_m3
    if density is None:
        assert listing.annual_tonnes is None
    else:
        assert listing.annual_tonnes == pytest.approx(10 * density)


def test_pieces_have_no_tonnage(session) -> None:
    listing = make_listing(session, make_firm(session), unit="unit", quantity=40)
    assert listing.annual_tonnes is None


def test_a_hazardous_code_makes_the_listing_hazardous(session) -> None:
    listing = make_listing(session, make_firm(session), title="Huile moteur usagée", low_code="13 02 05*",
                           hazardous=False)
    assert listing.hazardous is True


def test_a_need_in_another_commune_gets_a_site_there(session) -> None:
    firm = make_firm(session)
    listing = make_listing(session, firm, kind="need", commune_insee="61341", radius_km=30)
    assert listing.site.commune_insee == "61341"
    assert len(firm.sites) == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"commune_insee": "99999"}, "commune_insee"),
        ({"low_code": "99 99 99"}, "low_code"),
        ({"low_code": "16 01"}, "low_code"),
        ({"quantity": -3}, "quantity"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": "beaucoup"}, "quantity"),
        ({"quantity": 5e9, "unit": "t"}, "quantity"),
        ({"unit": "barrel"}, "unit"),
        ({"frequency": "daily-ish"}, "frequency"),
        ({"title": "x" * 201}, "title"),
        ({"title": ""}, "title"),
        ({"description": "y" * 5001}, "description"),
        ({"kind": "gift"}, "kind"),
        ({"radius_km": -5, "kind": "need"}, "radius_km"),
        ({"price_eur_per_unit": -1}, "price_eur_per_unit"),
        ({"available_from": "2026-05-01", "available_until": "2026-04-01"}, "available_until"),
        ({"material_family": "unobtainium"}, "material_family"),
    ],
)
def test_bad_listing_input_names_the_field_and_writes_nothing(session, overrides, field) -> None:
    firm = make_firm(session)
    before = listing_count(session)
    with pytest.raises(ValidationError) as info:
        make_listing(session, firm, **overrides)
    assert field in info.value.errors
    assert listing_count(session) == before


def test_all_problems_are_reported_at_once(session) -> None:
    firm = make_firm(session)
    with pytest.raises(ValidationError) as info:
        listings.create_listing(session, firm, {"kind": "offer"})
    assert {"title", "quantity", "unit", "frequency"} <= set(info.value.errors)


def test_a_partial_update_keeps_other_fields_and_recomputes_tonnes(session) -> None:
    listing = make_listing(session, make_firm(session), quantity=2, unit="t", frequency="monthly")
    listings.update_listing(session, listing, {"quantity": 3})
    assert listing.title == "Chutes de chambres à air"
    assert listing.annual_tonnes == pytest.approx(36)
    with pytest.raises(ValidationError):
        listings.update_listing(session, listing, {"unit": "gallon"})
