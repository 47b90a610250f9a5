"""Hostile uploads are refused at the first limit, with a French message, and write nothing.

Each file is small and built cheaply (a few KB to a few MB in memory): a sheet declaring a million
rows by sixteen thousand columns, a zip member claiming gigabytes, hundreds of thousands of empty
rows. None is timed: the tests show that the refusal comes before the spreadsheet library opens the
file, or at the line where the first limit is met.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile

import openpyxl
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from matchmaking.models import Listing, OutboxEvent
from matchmaking.services import imports
from matchmaking.services.import_bounds import ImportLimits
from tests.factories import make_firm

SHEET = "xl/worksheets/sheet1.xml"
HEADER = ["type", "titre", "quantité", "unité", "fréquence"]


def _workbook(rows: int = 1) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "Annonces"
    sheet.append(HEADER)
    for i in range(rows):
        sheet.append(["offre", f"Sciure de chêne {i}", 3, "t", "mensuel"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _rewrite(content: bytes, change, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """The same workbook with its first sheet's XML changed."""
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info.filename, change(data) if info.filename == SHEET else data)
    return out.getvalue()


def _dimension(ref: str):
    return lambda xml: re.sub(rb'<dimension ref="[^"]*" ?/>', f'<dimension ref="{ref}"/>'.encode(), xml)


def _without_dimension(xml: bytes) -> bytes:
    return re.sub(rb'<dimension ref="[^"]*" ?/>', b"", xml)


def _append_rows(extra: bytes):
    return lambda xml: _without_dimension(xml).replace(b"</sheetData>", extra + b"</sheetData>")


def _empty_rows(first: int, last: int) -> bytes:
    return b"".join(b'<row r="%d"/>' % n for n in range(first, last + 1))


def _text_row(number: int, value: str = "offre") -> bytes:
    return f'<row r="{number}"><c r="A{number}" t="inlineStr"><is><t>{value}</t></is></c></row>'.encode()


def _claiming_size(content: bytes, member: str, size: int) -> bytes:
    """The zip with `member`'s uncompressed size, as its central directory declares it, replaced."""
    data = bytearray(content)
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46:at + 46 + name_length]) == member.encode():
            struct.pack_into("<I", data, at + 24, size)
            return bytes(data)
        at += 4
    raise AssertionError(f"{member} not in the zip")


@pytest.fixture()
def firm(session):
    firm = make_firm(session)
    session.commit()
    return firm


@pytest.fixture()
def library_untouched(monkeypatch):
    """The refusal must come before the spreadsheet library opens the workbook."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("the workbook was opened by openpyxl")

    monkeypatch.setattr(openpyxl, "load_workbook", refuse)


def _refused(session, firm, filename, content, **options) -> str:
    events = session.scalar(select(func.count()).select_from(OutboxEvent))
    report = imports.import_listings(session, firm, filename, content, **options)
    assert report.file_errors and not report.written, (report.file_errors, report.warnings)
    assert report.created == report.updated == 0
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Listing).where(Listing.firm_id == firm.id)) == 0
    assert session.scalar(select(func.count()).select_from(OutboxEvent)) == events
    return " ".join(str(m) for m in report.file_errors).replace("\u202f", " ").replace("\xa0", " ")


def test_a_declared_range_of_a_million_rows_by_16384_columns_is_refused_before_opening(
        session, firm, library_untouched) -> None:
    content = _rewrite(_workbook(), _dimension("A1:XFD1048576"))
    assert len(content) < 10_000
    message = _refused(session, firm, "annonces.xlsx", content)
    assert "La feuille « Annonces » déclare la plage A1:XFD1048576" in message
    assert "1 048 576 lignes, 16 384 colonnes" in message and "enregistrez la feuille en CSV" in message


def test_a_lone_cell_in_the_far_corner_is_refused_at_its_line(session, firm, library_untouched) -> None:
    far = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
    message = _refused(session, firm, "annonces.xlsx", _rewrite(_workbook(), _append_rows(far)))
    assert "continue au-delà de la ligne 50 000 (jusqu’à la ligne 1 048 576)" in message


def test_a_value_far_to_the_right_is_refused_naming_its_column(session, firm, library_untouched) -> None:
    wide = b'<row r="3"><c r="XFD3" t="inlineStr"><is><t>x</t></is></c></row>'
    message = _refused(session, firm, "annonces.xlsx", _rewrite(_workbook(), _append_rows(wide)))
    assert "La ligne 3 va jusqu’à la colonne XFD ; au plus 200 colonnes sont lues" in message


def test_a_member_claiming_gigabytes_is_refused_before_anything_is_unpacked(
        session, firm, library_untouched) -> None:
    content = _claiming_size(_workbook(), SHEET, 0xF000_0000)
    message = _refused(session, firm, "annonces.xlsx", content)
    assert re.search(r"Une fois décompressé, ce fichier Excel occuperait 3 84\d Mo \(40 Mo au plus sont lus\)",
                     message), message


def test_a_member_that_unpacks_to_a_thousand_times_its_size_is_refused(session, firm, library_untouched) -> None:
    spaces = b" " * (20 * 1024 * 1024)
    padded = _rewrite(_workbook(), lambda xml: xml.replace(b"</worksheet>", spaces + b"</worksheet>"))
    assert len(padded) < 100_000
    message = _refused(session, firm, "annonces.xlsx", padded)
    assert f"La partie {SHEET} de ce fichier Excel se décompresse en" in message and "fois sa taille" in message


def test_a_member_holding_more_than_it_declares_is_not_read_past_its_declaration(session, firm) -> None:
    # The zip reader stops at the declared size and the checksum fails: the file is merely invalid.
    content = _claiming_size(_workbook(), SHEET, 100)
    message = _refused(session, firm, "annonces.xlsx", content)
    assert "n’est pas un classeur Excel (.xlsx) valide" in message


def test_300000_empty_rows_are_refused_at_the_line_limit(session, firm, library_untouched) -> None:
    content = _rewrite(_workbook(), _append_rows(_empty_rows(3, 300_002)))
    message = _refused(session, firm, "annonces.xlsx", content)
    assert "La feuille « Annonces » continue au-delà de la ligne 50 000 (jusqu’à la ligne 50 001)" in message


def test_300000_missing_rows_before_a_last_one_are_refused_without_being_walked(
        session, firm, library_untouched) -> None:
    # Nothing between line 2 and line 300 002: the library would hand over each missing row.
    message = _refused(session, firm, "annonces.xlsx", _rewrite(_workbook(), _append_rows(_text_row(300_002))))
    assert "jusqu’à la ligne 300 002" in message


def test_a_listing_after_a_long_run_of_empty_rows_is_refused(session, firm, library_untouched) -> None:
    content = _rewrite(_workbook(), _append_rows(_empty_rows(3, 2_000) + _text_row(2_001)))
    message = _refused(session, firm, "annonces.xlsx", content)
    assert "La ligne 2 001 vient après 1 998 lignes vides : le tableau doit former un seul bloc" in message


def test_a_table_followed_by_formatted_empty_rows_imports_and_reading_stops_at_its_end(session, firm) -> None:
    # What spreadsheets leave behind: cells with a format and no value, far below the table.
    styled = b"".join(b'<row r="%d"><c r="E%d" s="0"/></row>' % (n, n) for n in range(4, 30_000))
    content = _rewrite(_workbook(rows=2), _append_rows(styled))
    report = imports.import_listings(session, firm, "annonces.xlsx", content)
    assert report.ok and report.created == 2 and report.rows == 2


def test_too_many_parts_shared_texts_or_sheets_are_refused(session, firm, library_untouched) -> None:
    source = zipfile.ZipFile(io.BytesIO(_workbook()))
    parts = io.BytesIO()
    with zipfile.ZipFile(parts, "w") as archive:
        for info in source.infolist():
            archive.writestr(info.filename, source.read(info.filename))
        for n in range(600):
            archive.writestr(f"customXml/item{n}.xml", "<a/>")
    assert "trop de parties (500 au plus)" in _refused(session, firm, "annonces.xlsx", parts.getvalue())

    book = Workbook()
    book.active.append(HEADER)
    for i in range(4):
        book.create_sheet(f"Notes {i}")
    buffer = io.BytesIO()
    book.save(buffer)
    message = _refused(session, firm, "a.xlsx", buffer.getvalue(), limits=ImportLimits(max_sheets=3))
    assert "Ce classeur a 5 feuilles (3 au plus)" in message

    shared = _with_shared_strings(_workbook(), 50)
    message = _refused(session, firm, "a.xlsx", shared, limits=ImportLimits(max_shared_strings=10))
    assert "plus de 10 textes différents" in message


def _with_shared_strings(content: bytes, count: int) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    table = ('<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             + "".join(f"<si><t>texte {n}</t></si>" for n in range(count)) + "</sst>")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
        target.writestr("xl/sharedStrings.xml", table)
    return out.getvalue()


def test_a_row_holding_thousands_of_elements_is_refused(session, firm, library_untouched) -> None:
    runs = b"".join(b"<r><t>x</t></r>" for _ in range(5_000))
    crowded = b'<row r="3"><c r="A3" t="inlineStr"><is>' + runs + b"</is></c></row>"
    message = _refused(session, firm, "annonces.xlsx", _rewrite(_workbook(), _append_rows(crowded)))
    assert "La ligne 3 de la feuille « Annonces » contient bien trop d’éléments" in message


def test_a_document_type_declaration_is_refused(session, firm, library_untouched) -> None:
    entity = _rewrite(_workbook(), lambda xml: b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaa">]>'
                      + xml.split(b"?>", 1)[-1])
    assert "n’est pas un classeur Excel (.xlsx) valide" in _refused(session, firm, "annonces.xlsx", entity)


def test_csv_with_300000_empty_lines_is_refused_at_the_line_limit(session, firm) -> None:
    content = ";".join(HEADER).encode() + b"\n" + b"\n" * 300_000 + b"offre;Sciure;3;t;mensuel\n"
    message = _refused(session, firm, "annonces.csv", content)
    assert "Le fichier continue au-delà de la ligne 50 000" in message


def test_csv_with_a_listing_after_a_long_run_of_empty_lines_is_refused(session, firm) -> None:
    content = ";".join(HEADER).encode() + b"\n" + b";;;;\n" * 1_500 + b"offre;Sciure;3;t;mensuel\n"
    message = _refused(session, firm, "annonces.csv", content)
    assert "La ligne 1 502 vient après 1 500 lignes vides" in message


def test_csv_with_a_value_in_column_250_is_refused_and_empty_trailing_columns_are_not(session, firm) -> None:
    header = ";".join(HEADER) + ";" * 300
    wide = ";".join(HEADER) + ";" * 245 + "x"  # the 250th cell
    message = _refused(session, firm, "annonces.csv", f"{wide}\noffre;Sciure;3;t;mensuel\n".encode())
    assert "La ligne 1 va jusqu’à la colonne 250" in message
    report = imports.import_listings(session, firm, "annonces.csv",
                                     f"{header}\noffre;Sciure;3;t;mensuel{';' * 300}\n".encode())
    assert report.ok and report.created == 1


def test_the_limits_come_from_the_configuration(session, firm) -> None:
    limits = ImportLimits.from_config({"IMPORT_MAX_LINES": "10", "IMPORT_MAX_ROWS": 3, "IMPORT_MAX_COLUMNS": ""})
    assert (limits.max_lines, limits.max_rows, limits.max_columns) == (10, 3, ImportLimits().max_columns)
    content = _workbook(rows=12)
    message = _refused(session, firm, "annonces.xlsx", content, limits=limits)
    assert "au plus 10 lignes" in message
    assert imports.import_listings(session, firm, "annonces.xlsx", _workbook(rows=2), limits=limits).created == 2
