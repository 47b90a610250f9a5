"""What the fuzzing found, pinned as plain tests."""

from __future__ import annotations

from sqlalchemy import func, select

from matchmaking.models import Listing
from matchmaking.services import imports
from tests.factories import make_firm


def test_a_nul_character_deep_in_a_csv_file_is_a_file_error_not_a_database_error(session) -> None:
    # Only the first 4 KB used to be looked at: a NUL further down reached PostgreSQL, which refuses it.
    firm = make_firm(session)
    session.commit()
    header = "type;titre;quantité;unité;fréquence;description\n"
    content = (header + "offre;Sciure;3;t;mensuel;" + "x" * 5000 + "\noffre;Sci\x00ure;3;t;mensuel;ok\n").encode()
    report = imports.import_listings(session, firm, "annonces.csv", content)
    assert report.file_errors and not report.written
    assert "CSV" in str(report.file_errors[0])
    session.flush()
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Listing).where(Listing.firm_id == firm.id)) == 0
