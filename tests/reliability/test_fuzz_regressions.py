"""What the fuzzing found, pinned as plain tests."""

from __future__ import annotations

import io
import zipfile

import pytest
from openpyxl import Workbook
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


@pytest.mark.parametrize("number", ["1e309", "-1e309", "nan", "1e300"])
def test_a_workbook_with_an_infinite_number_as_waste_code_gets_a_row_error(session, number) -> None:
    # int(inf) raised OverflowError (and int(nan) ValueError) while reading the row: a 500.
    firm = make_firm(session)
    session.commit()
    book = Workbook()
    sheet = book.active
    sheet.append(["type", "titre", "code déchet", "quantité", "unité", "fréquence"])
    sheet.append(["offre", "Sciure", 424242, 3, "t", "mensuel"])
    buffer = io.BytesIO()
    book.save(buffer)
    content = _rewrite(buffer.getvalue(), b"<v>424242</v>", f"<v>{number}</v>".encode())
    report = imports.import_listings(session, firm, "annonces.xlsx", content)
    assert not report.written
    if number in READ_AS_NUMBERS:  # openpyxl reads these as floats; it refuses the others as a whole
        assert not report.file_errors
        assert [(e.line, str(e.column)) for e in report.row_errors] == [(2, "code déchet")]
    else:
        assert report.file_errors
    session.rollback()


READ_AS_NUMBERS = {"1e309", "-1e309", "1e300"}


def _rewrite(xlsx: bytes, old: bytes, new: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item.filename).replace(old, new))
    return out.getvalue()
