"""The shipped seed data loads, twice without change, and the demo territory is what the CCMA needs."""

import pytest
from sqlalchemy import func, select

from matchmaking.models import Commune, Firm, Kind, Listing, LowCode, MaterialFamily, Site, User
from matchmaking.services import seeding


def test_reference_data_is_complete(session) -> None:
    assert session.scalar(select(func.count()).select_from(LowCode).where(LowCode.level == "entry")) == 842
    assert session.scalar(select(func.count()).select_from(LowCode).where(LowCode.level == "chapter")) == 20
    assert session.scalar(select(func.count()).select_from(Commune)) == 973
    assert session.scalar(select(func.count()).select_from(Commune).where(Commune.ccma.is_(True))) == 26
    assert 20 <= session.scalar(select(func.count()).select_from(MaterialFamily)) <= 40
    orphans = session.scalar(
        select(func.count()).select_from(LowCode).where(LowCode.level == "entry", LowCode.family_slug.is_(None))
    )
    assert orphans == 0


def test_loading_reference_data_again_changes_nothing(session) -> None:
    assert set(seeding.load_reference(session).values()) == {0}


@pytest.fixture()
def demo(session):
    counts = seeding.load_demo(session)
    session.commit()
    return counts


def test_the_demo_territory_is_large_and_loads_once(session, demo) -> None:
    assert demo["demo firms"] >= 40
    assert demo["demo listings"] >= 150
    assert seeding.load_demo(session) == {"demo firms": 0, "demo listings": 0}
    communes = session.scalars(select(Site.commune_insee).join(Firm).where(Firm.demo.is_(True))).all()
    ccma = set(session.scalars(select(Commune.insee).where(Commune.ccma.is_(True))))
    assert set(communes) <= ccma
    assert len(set(communes)) >= 10  # spread over the territory, not piled in one town
    assert session.scalar(select(func.count()).select_from(User)) >= 40


def test_the_demo_has_the_bike_shop_inner_tubes_and_the_pallet_maker(session, demo) -> None:
    offers = session.scalars(select(Listing).where(Listing.kind == Kind.offer)).all()
    needs = session.scalars(select(Listing).where(Listing.kind == Kind.need)).all()
    assert any("chambre" in o.title.lower() and o.material_family == "rubber" for o in offers)
    assert any("palette" in (n.title + n.description + n.firm.name).lower() and n.firm.naf_code == "16.24Z"
               for n in needs)
    assert len(offers) >= 60 and len(needs) >= 50
