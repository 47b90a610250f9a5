"""Re-importing a file updates the firm's listings in place, and never names an anonymous one that
the file does not say to name."""

from __future__ import annotations

from sqlalchemy import select

from matchmaking.models import Listing
from matchmaking.services import imports, listings
from tests.factories import make_firm

HEADER = "référence;type;titre;quantité;unité;fréquence;anonyme\r\n"


def _import(session, firm, lines: str):
    report = imports.import_listings(session, firm, "annonces.csv", (HEADER + lines).encode())
    assert report.written, report.row_errors or report.file_errors
    session.flush()
    return report


def _by_reference(session, firm, reference: str) -> Listing:
    return session.scalars(select(Listing).where(Listing.firm_id == firm.id, Listing.reference == reference)).one()


def test_an_empty_anonymous_cell_in_a_reimport_keeps_the_listing_anonymous(session) -> None:
    firm = make_firm(session)
    _import(session, firm, "CH-01;offre;Chutes de chambres à air;15;kg;mensuel;\r\n")
    listing = _by_reference(session, firm, "CH-01")
    listings.update_listing(session, listing, {"anonymous": True})  # made anonymous on its page since
    report = _import(session, firm, "CH-01;offre;Chutes de chambres à air;20;kg;mensuel;\r\n")
    assert report.updated == 1 and listing.quantity == 20
    assert listing.anonymous is True


def test_a_reimport_without_the_anonymous_column_keeps_the_listing_anonymous(session) -> None:
    firm = make_firm(session)
    _import(session, firm, "CH-02;offre;Sciure de chêne;3;t;mensuel;oui\r\n")
    listing = _by_reference(session, firm, "CH-02")
    report = imports.import_listings(session, firm, "annonces.csv",
                                     "référence;type;titre;quantité;unité;fréquence\r\n"
                                     "CH-02;offre;Sciure de chêne;4;t;mensuel\r\n".encode())
    assert report.updated == 1 and listing.anonymous is True


def test_a_reimport_that_says_non_names_the_listing_and_oui_hides_it(session) -> None:
    firm = make_firm(session)
    _import(session, firm, "CH-03;offre;Palettes cassées;2;t;mensuel;oui\r\n")
    listing = _by_reference(session, firm, "CH-03")
    _import(session, firm, "CH-03;offre;Palettes cassées;2;t;mensuel;non\r\n")
    assert listing.anonymous is False
    _import(session, firm, "CH-03;offre;Palettes cassées;2;t;mensuel;oui\r\n")
    assert listing.anonymous is True


def test_a_new_row_with_an_empty_anonymous_cell_is_named(session) -> None:
    firm = make_firm(session)
    _import(session, firm, "CH-04;offre;Copeaux de bois;2;t;mensuel;\r\n")
    assert _by_reference(session, firm, "CH-04").anonymous is False
