"""Bulk import of listings: every bad row reported with its line and column, all-or-nothing by default."""

import csv
import io
import os

from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from matchmaking.models import Listing, OutboxEvent
from matchmaking.services import imports
from tests.factories import hostile_workbook, make_firm, make_user
from tests.web.conftest import sign_in, text, token

HEADER_FR = ["référence", "type", "titre", "description", "code déchet", "quantité", "unité", "fréquence", "rayon km"]


def _rows(n, bad_every=0):
    """n rows; every `bad_every`-th row has one problem, cycling through several kinds of mistakes."""
    mistakes = [("quantité", "beaucoup"), ("unité", "barrique"), ("fréquence", "parfois"), ("type", "don"),
                ("code déchet", "99 99 99"), ("titre", "")]
    rows, bad = [], {}
    for i in range(n):
        row = {"référence": f"R{i:05d}", "type": "offre" if i % 2 else "besoin", "titre": f"Chutes de bois {i}",
               "description": "Sèches, non traitées", "code déchet": "03 01 05", "quantité": f"{1 + i % 7},5",
               "unité": "t", "fréquence": "mensuel", "rayon km": "40" if i % 2 == 0 else ""}
        if bad_every and i % bad_every == 0:
            column, value = mistakes[(i // bad_every) % len(mistakes)]
            row[column] = value
            bad[i + 2] = column  # line 1 is the header
        rows.append(row)
    return rows, bad


def _csv(rows, header=HEADER_FR, delimiter=";", encoding="utf-8"):
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=header, delimiter=delimiter, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def _count(session, firm):
    return session.scalar(select(func.count()).select_from(Listing).where(Listing.firm_id == firm.id))


def test_5000_rows_with_5_percent_bad_report_each_bad_row_and_write_nothing(session) -> None:
    firm = make_firm(session)
    session.commit()
    rows, bad = _rows(5000, bad_every=20)
    assert len(bad) == 250
    events_before = session.scalar(select(func.count()).select_from(OutboxEvent))
    report = imports.import_listings(session, firm, "annonces.csv", _csv(rows))
    assert not report.file_errors and report.rows == 5000
    assert not report.written and report.created == report.updated == 0
    assert {e.line: e.column for e in report.row_errors} == bad
    assert all(str(e.message) for e in report.row_errors)
    session.rollback()
    assert _count(session, firm) == 0
    assert session.scalar(select(func.count()).select_from(OutboxEvent)) == events_before


def test_on_request_only_the_valid_rows_are_written(session) -> None:
    firm = make_firm(session)
    rows, bad = _rows(200, bad_every=10)
    report = imports.import_listings(session, firm, "annonces.csv", _csv(rows), valid_only=True)
    assert report.written and report.created == 200 - len(bad) and report.skipped == len(bad)
    assert _count(session, firm) == 200 - len(bad)


def test_importing_the_same_file_again_updates_in_place(session) -> None:
    firm = make_firm(session)
    rows, _ = _rows(30)
    first = imports.import_listings(session, firm, "a.csv", _csv(rows))
    assert first.created == 30
    rows[0]["titre"] = "Titre corrigé"
    again = imports.import_listings(session, firm, "a.csv", _csv(rows))
    assert again.created == 0 and again.updated == 30
    assert _count(session, firm) == 30
    assert session.scalar(select(Listing.title).where(Listing.firm_id == firm.id, Listing.reference == "R00000")) \
        == "Titre corrigé"


def test_rows_without_reference_are_recognised_by_kind_and_title(session) -> None:
    firm = make_firm(session)
    rows, _ = _rows(3)
    for row in rows:
        row["référence"] = ""
    imports.import_listings(session, firm, "a.csv", _csv(rows))
    report = imports.import_listings(session, firm, "a.csv", _csv(rows))
    assert report.updated == 3 and _count(session, firm) == 3


def test_encodings_separators_and_english_headers(session) -> None:
    firm = make_firm(session)
    rows, _ = _rows(4)
    for encoding in ("utf-8", "utf-8-sig", "cp1252"):
        report = imports.import_listings(session, firm, "a.csv", _csv(rows, encoding=encoding))
        assert report.ok and report.rows == 4, (encoding, report.file_errors, report.row_errors)
        assert report.encoding == ("cp1252" if encoding == "cp1252" else "utf-8")
    english = [{"reference": r["référence"], "kind": "offer", "title": r["titre"], "quantity": "2.5", "unit": "kg",
                "frequency": "weekly"} for r in rows]
    report = imports.import_listings(session, firm, "a.csv", _csv(
        english, header=["reference", "kind", "title", "quantity", "unit", "frequency"], delimiter=","))
    assert report.ok and report.delimiter == "," and report.updated == 4
    assert session.scalar(select(Listing.title).where(Listing.reference == "R00001")) == "Chutes de bois 1"


def test_duplicate_references_in_a_file_are_reported(session) -> None:
    firm = make_firm(session)
    rows, _ = _rows(3)
    rows[2]["référence"] = rows[0]["référence"]
    report = imports.import_listings(session, firm, "a.csv", _csv(rows))
    assert [(e.line, e.column) for e in report.row_errors] == [(4, "référence")]
    assert "ligne 2" in str(report.row_errors[0].message)


def test_malformed_files_give_a_clear_report_never_an_exception(session) -> None:
    firm = make_firm(session)
    rows, _ = _rows(2)
    cases = {
        "empty": ("a.csv", b""),
        "blank": ("a.csv", b"\r\n \r\n"),
        "header only": ("a.csv", _csv([])),
        "missing columns": ("a.csv", "titre;quantité\nSciure;3\n".encode()),
        "unknown columns": ("a.csv", b"foo;bar\n1;2\n"),
        "binary junk": ("a.csv", os.urandom(10 * 1024 * 1024 - 10)),
        "text junk": ("a.csv", b"x" * (10 * 1024 * 1024 - 10)),
        "too large": ("a.csv", b"x" * (10 * 1024 * 1024 + 1)),
        "xlsx that is csv": ("a.xlsx", _csv(rows)),
        "broken zip": ("a.xlsx", b"PK\x03\x04" + b"\x00" * 100),
        "zip but not xlsx": ("a.xlsx", _zip()),
        "old xls": ("a.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 100),
        "bad utf-8 and cp1252": ("a.csv", b"titre;type\n\x81\x8d\x8f\x90\x9d;offre\n"),
        "unclosed quote": ("a.csv", ("titre;type;quantité;unité;fréquence\n\"" + "x" * 200_000 + "\n").encode()),
    }
    for name, (filename, content) in cases.items():
        report = imports.import_listings(session, firm, filename, content)
        assert report.file_errors and not report.written, name
        assert all(str(message) for message in report.file_errors), name
    assert _count(session, firm) == 0


def _zip():
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hello")
    return buffer.getvalue()


def test_xlsx_with_numbers_dates_and_french_headers(session) -> None:
    firm = make_firm(session)
    book = Workbook()
    sheet = book.active
    sheet.append(["Référence", "Type", "Titre", "Code déchet", "Quantité", "Unité", "Fréquence", "Disponible du"])
    from datetime import datetime

    sheet.append([101, "offre", "Sciure", 30105, 3, "t", "mensuel", datetime(2026, 9, 1)])
    sheet.append([102, "besoin", "Palettes", "15 01 03", 40.0, "unité", "mensuel", None])
    buffer = io.BytesIO()
    book.save(buffer)
    report = imports.import_listings(session, firm, "annonces.xlsx", buffer.getvalue())
    assert report.ok and report.created == 2, (report.file_errors, [(e.line, e.column, str(e.message))
                                                                    for e in report.row_errors])
    sawdust = session.scalar(select(Listing).where(Listing.firm_id == firm.id, Listing.reference == "101"))
    assert sawdust.low_code == "03 01 05" and str(sawdust.available_from) == "2026-09-01"


def test_the_templates_import_as_they_are(session) -> None:
    firm = make_firm(session)
    for lang in ("fr", "en"):
        report = imports.import_listings(session, firm, "modele.csv", imports.template_csv(lang))
        assert report.ok, (lang, [(e.line, e.column, str(e.message)) for e in report.row_errors])
        report = imports.import_listings(session, firm, "modele.xlsx", imports.template_xlsx(lang))
        assert report.ok, (lang, [(e.line, e.column, str(e.message)) for e in report.row_errors])
    assert _count(session, firm) == 2
    assert load_workbook(io.BytesIO(imports.template_xlsx("fr"))).active["C1"].value == "titre"


def test_the_import_page_reports_lines_and_writes_nothing_by_default(client, session) -> None:
    firm = make_firm(session)
    user = make_user(session, firm)
    session.commit()
    sign_in(client, user)
    rows, bad = _rows(40, bad_every=8)
    data = {"csrf_token": token(client, "/listings/import"), "mode": "all",
            "file": (io.BytesIO(_csv(rows)), "annonces.csv")}
    response = client.post("/listings/import", data=data, content_type="multipart/form-data")
    html = text(response)
    assert response.status_code == 422 and "Rien n’a été importé" in html
    for line, column in bad.items():
        assert f"<td>{line}</td><td>{column}</td>" in html
    assert _count(session, firm) == 0
    data = {"csrf_token": token(client, "/listings/import"), "mode": "valid",
            "file": (io.BytesIO(_csv(rows)), "annonces.csv")}
    response = client.post("/listings/import", data=data, content_type="multipart/form-data")
    assert response.status_code == 200 and "Import terminé" in text(response)
    assert _count(session, firm) == 40 - len(bad)


def test_the_import_page_without_a_file_or_with_junk_answers_in_words(client, session) -> None:
    user = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, user)
    response = client.post("/listings/import", data={"csrf_token": token(client, "/listings/import")},
                           content_type="multipart/form-data")
    assert response.status_code == 422 and 'id="e-file"' in text(response)
    data = {"csrf_token": token(client, "/listings/import"), "file": (io.BytesIO(b"\x00\x01junk"), "x.xlsx")}
    response = client.post("/listings/import", data=data, content_type="multipart/form-data")
    assert response.status_code == 422 and "Le fichier n’a pas pu être lu" in text(response)


def test_templates_download(client, session) -> None:
    user = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, user)
    csv_file = client.get("/listings/import/template.csv")
    assert csv_file.status_code == 200 and csv_file.data.startswith("\ufeff".encode())
    assert "attachment" in csv_file.headers["Content-Disposition"]
    xlsx = client.get("/listings/import/template.xlsx")
    assert xlsx.status_code == 200 and xlsx.data.startswith(b"PK")
    assert client.get("/listings/import/template.pdf").status_code == 404


def test_a_file_above_the_upload_limit_gets_a_friendly_page(client, session) -> None:
    user = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, user)
    # A ready-made body (not a file the test client would spool to disk), refused on its length alone.
    body = (b'--b\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            + token(client, "/listings/import").encode()
            + b'\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
            + b"x" * (13 * 1024 * 1024) + b"\r\n--b--\r\n")
    response = client.post("/listings/import", data=body, content_type="multipart/form-data; boundary=b")
    assert response.status_code == 413 and "Fichier trop volumineux" in text(response)


def test_the_import_page_refuses_a_sheet_declaring_a_million_rows_in_french(app, client, session,
                                                                              monkeypatch) -> None:

    user = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, user)
    hostile = hostile_workbook()
    data = {"csrf_token": token(client, "/listings/import"), "file": (io.BytesIO(hostile), "a.xlsx")}
    response = client.post("/listings/import", data=data, content_type="multipart/form-data")
    html = text(response)
    assert response.status_code == 422 and "Le fichier n’a pas pu être lu" in html
    assert "déclare la plage A1:XFD1048576" in html
    # The page reads its limits from the configuration.
    monkeypatch.setitem(app.config, "IMPORT_MAX_ROWS", 1)
    rows, _ = _rows(2)
    data = {"csrf_token": token(client, "/listings/import"), "file": (io.BytesIO(_csv(rows)), "a.csv")}
    response = client.post("/listings/import", data=data, content_type="multipart/form-data")
    assert response.status_code == 422 and "Trop de lignes : 1 annonces au plus par fichier" in text(response)
    assert session.scalar(select(func.count()).select_from(Listing)) == 0
