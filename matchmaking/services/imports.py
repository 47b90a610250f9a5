"""Bulk import of a firm's listings from a CSV or XLSX file.

Every row is checked before anything is written. By default one bad row stops the whole import;
on request only the valid rows are written. The firm's own `reference` column makes a re-import
update the listings in place instead of duplicating them; an empty `anonymous` cell then keeps the
listing's anonymity as it is (only "oui"/"non", "yes"/"no", 1/0 change it: a file exported before
the listing was made anonymous must not name it). A malformed file gives a report, never
an exception. What a file may cost (size, lines, columns, unpacked size of a workbook) is bounded
by `ImportLimits` and checked before and while reading, stopping at the first limit.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Firm, Listing, LowCode, MaterialFamily
from . import listings as listing_service
from .errors import ValidationError
from .import_bounds import FileProblem, ImportLimits, check_workbook, choose_sheet, number

__all__ = ["FileProblem", "ImportLimits", "ImportReport", "RowError", "import_listings"]

LIMITS = ImportLimits()  # the defaults; the app's configuration may change each (ImportLimits.from_config)
MAX_BYTES = LIMITS.max_bytes
MAX_ROWS = LIMITS.max_rows
MAX_FIELD_CHARS = 20_000
WRITE_BATCH = 200  # new listings flushed together
ENCODINGS = ("utf-8-sig", "cp1252")  # utf-8-sig reads plain UTF-8 too
DELIMITERS = (";", ",", "\t")

# Column → (English header, French header, other accepted spellings). Headers are compared folded:
# lower case, no accents, punctuation as spaces.
COLUMNS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "reference": ("reference", "référence", ("ref", "votre reference", "id", "identifiant")),
    "kind": ("kind", "type", ("offre ou besoin", "offer or need", "nature", "sens")),
    "title": ("title", "titre", ("intitule", "libelle", "designation", "matiere", "name", "nom")),
    "description": ("description", "description", ("details", "detail", "commentaire", "comment")),
    "low_code": ("waste code", "code déchet", ("low code", "low_code", "code", "code dechets", "ewc code",
                                                "code ced", "code nomenclature", "list of waste code")),
    "material_family": ("material family", "famille", ("material_family", "famille de matiere", "family")),
    "quantity": ("quantity", "quantité", ("qte", "qty", "quantite par lot")),
    "unit": ("unit", "unité", ("unite", "units")),
    "frequency": ("frequency", "fréquence", ("frequence", "periodicite", "rythme")),
    "radius_km": ("radius km", "rayon km", ("radius", "rayon", "radius_km", "rayon de recherche km")),
    "site": ("site", "site", ("site name", "nom du site", "etablissement")),
    "commune_insee": ("commune insee", "commune insee", ("insee", "code insee", "commune_insee")),
    "hazardous": ("hazardous", "dangereux", ("dangerous", "dechet dangereux")),
    "accepts_hazardous": ("accepts hazardous", "accepte dangereux", ("accepts_hazardous",
                                                                     "accepte les dechets dangereux")),
    "anonymous": ("anonymous", "anonyme", ()),
    "price_eur_per_unit": ("price eur per unit", "prix eur par unité", ("price", "prix", "price_eur_per_unit",
                                                                        "prix par unite", "prix unitaire")),
    "available_from": ("available from", "disponible du", ("available_from", "disponible a partir du",
                                                           "date de debut", "debut")),
    "available_until": ("available until", "disponible jusqu'au", ("available_until", "disponible au",
                                                                   "date de fin", "fin")),
}
REQUIRED = ("kind", "title", "quantity", "unit", "frequency")
FIELD_LABELS: dict[str, Any] = {
    "reference": _l("reference"), "kind": _l("kind"), "title": _l("title"), "description": _l("description"),
    "low_code": _l("waste code"), "material_family": _l("material family"), "quantity": _l("quantity"),
    "unit": _l("unit"), "frequency": _l("frequency"), "radius_km": _l("radius km"), "site": _l("site"),
    "commune_insee": _l("commune INSEE"), "hazardous": _l("hazardous"),
    "accepts_hazardous": _l("accepts hazardous"), "anonymous": _l("anonymous"),
    "price_eur_per_unit": _l("price EUR per unit"), "available_from": _l("available from"),
    "available_until": _l("available until"),
}


def fold(header: object) -> str:
    plain = unicodedata.normalize("NFKD", str(header or "")).encode("ascii", "ignore").decode().lower()
    plain = plain.replace("€", "eur")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


ALIASES: dict[str, str] = {}
for _column, (_en, _fr, _others) in COLUMNS.items():
    for _spelling in (_column, _en, _fr, *_others):
        ALIASES.setdefault(fold(_spelling), _column)


@dataclass(slots=True)
class RowError:
    line: int  # line in a CSV file, row number in a spreadsheet
    column: str  # the header as written in the file, or the field's label
    message: Any  # a lazy string: shown in the reader's language


@dataclass(slots=True)
class ImportReport:
    filename: str
    format: str | None = None  # "csv" | "xlsx"
    encoding: str | None = None
    delimiter: str | None = None
    rows: int = 0  # data rows read (empty rows skipped)
    file_errors: list[Any] = field(default_factory=list)
    row_errors: list[RowError] = field(default_factory=list)
    warnings: list[Any] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    skipped: int = 0  # bad rows left out when only valid rows are imported
    written: bool = False
    out_of_time: bool = False  # stopped at its deadline, nothing written
    headers: dict[str, str] = field(default_factory=dict)  # field → the header as written in the file

    @property
    def bad_lines(self) -> list[int]:
        return sorted({e.line for e in self.row_errors})

    @property
    def valid(self) -> int:
        return self.rows - len(self.bad_lines)

    @property
    def ok(self) -> bool:
        return not self.file_errors and not self.row_errors

    @property
    def more_row_errors(self) -> int:  # beyond the first thousand the page lists
        return max(0, len(self.row_errors) - 1000)


# --- reading -----------------------------------------------------------------------------------


def _decode(content: bytes, report: ImportReport) -> str:
    if b"\x00" in content:  # anywhere: PostgreSQL refuses NUL in text
        raise FileProblem(_l("This file is not a text (CSV) file. Save your table as CSV or XLSX."))
    for encoding in ENCODINGS:
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        report.encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        return text
    raise FileProblem(_l("The characters of this file cannot be read. Save it as CSV UTF-8 or as XLSX."))


def _delimiter(text: str) -> str:
    """The separator that splits the header line into the most known columns (Excel FR writes ';')."""
    first = next((line for line in text.splitlines() if line.strip()), "")[:5000]

    def known(delimiter: str) -> tuple[int, int]:
        cells = next(csv.reader([first], delimiter=delimiter), [])
        return sum(1 for c in cells if fold(c) in ALIASES), len(cells)

    return max(DELIMITERS, key=known)


def _csv_rows(content: bytes, report: ImportReport) -> Iterator[tuple[int, list[Any]]]:
    text = _decode(content, report)
    delimiter = report.delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    line = 1
    try:
        for cells in reader:
            yield line, cells
            line = reader.line_num + 1
    except csv.Error as exc:
        raise FileProblem(_l("Line %(line)s cannot be read (%(reason)s).", line=line, reason=str(exc))) from None


def _xlsx_rows(content: bytes, limits: ImportLimits) -> Iterator[tuple[int, list[Any]]]:
    from openpyxl import load_workbook
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    scans = check_workbook(content, limits, fold).sheets  # refuses before the library reads anything
    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True, keep_links=False)
    except Exception:  # openpyxl raises many kinds (zip, XML, key errors) for a broken file
        raise FileProblem(_l("This file is not a valid Excel (.xlsx) workbook.")) from None
    try:
        name = choose_sheet([ws.title for ws in book.worksheets], fold)
        if name is None:
            raise FileProblem(_l("This file is not a valid Excel (.xlsx) workbook."))
        sheet = book[name]
        scan = scans.get(name)
        if scan is None:  # not the sheet that was checked: read it within the limits only
            last_row, last_column = limits.max_lines, limits.max_columns
        else:
            last_row, last_column = scan.last_row, max(scan.last_column, 1)
        if isinstance(sheet, ReadOnlyWorksheet):
            # The declared range only pads rows with empty cells: the scan knows where the values end.
            sheet.reset_dimensions()
        empty_run = 0
        for number, row in enumerate(sheet.iter_rows(max_row=max(last_row, 1), max_col=last_column,
                                                     values_only=True), start=1):
            cells = list(row)
            empty_run = empty_run + 1 if _is_empty(cells) else 0
            if number > last_row or empty_run >= limits.max_empty_run:
                break  # nothing holding a value follows: the scan has seen the whole sheet
            yield number, cells
    except FileProblem:
        raise
    except Exception:
        raise FileProblem(_l("This file is not a valid Excel (.xlsx) workbook.")) from None
    finally:
        book.close()


def _rows(filename: str, content: bytes, report: ImportReport, limits: ImportLimits,
          ) -> Iterator[tuple[int, list[Any]]]:
    lower = filename.lower()
    if content.startswith(b"\xd0\xcf\x11\xe0") or lower.endswith(".xls"):
        raise FileProblem(_l("Old Excel files (.xls) are not read: save the table as .xlsx or CSV."))
    if content.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(io.BytesIO(content)):
            raise FileProblem(_l("This file is not a valid Excel (.xlsx) workbook."))
        report.format = "xlsx"
        return _xlsx_rows(content, limits)
    if lower.endswith((".xlsx", ".xlsm")):
        report.format = "xlsx"
        raise FileProblem(_l("This file is not a valid Excel (.xlsx) workbook."))
    report.format = "csv"
    return _csv_rows(content, report)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return value.strip()
    return value


def _is_empty(cells: list[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _row_data(columns: Mapping[int, str], cells: list[Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for index, column in columns.items():
        value = _cell(cells[index]) if index < len(cells) else None
        # Spreadsheets turn codes into numbers: 030105 → 30105, 53185 → 53185.0.
        if column == "low_code" and isinstance(value, int | float) and not isinstance(value, bool):
            value = f"{int(value):06d}" if math.isfinite(value) else str(value)  # inf, nan: refused as codes
        elif column in ("reference", "commune_insee", "site") and isinstance(value, float) and value.is_integer():
            value = str(int(value))
        elif column in ("reference", "commune_insee", "site") and isinstance(value, int):
            value = str(value)
        if column == "commune_insee" and isinstance(value, str) and value.isdigit():
            value = value.zfill(5)
        data[column] = value
    return data


# --- the import --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    line: int
    data: dict[str, Any]
    target: Listing | None = None


def _site_id(firm: Firm, value: Any) -> int | None:
    wanted = fold(value)
    for site in firm.sites:
        if wanted in (fold(site.name), str(site.id), site.commune_insee, fold(site.commune.name)):
            return site.id
    return None


def _existing(session: Session, firm: Firm) -> tuple[dict[str, Listing], dict[tuple[str, str], Listing]]:
    by_reference: dict[str, Listing] = {}
    by_title: dict[tuple[str, str], Listing] = {}
    for listing in session.scalars(select(Listing).where(Listing.firm_id == firm.id)):
        if listing.reference:
            by_reference[listing.reference] = listing
        else:
            by_title.setdefault((listing.kind.value, fold(listing.title)), listing)
    return by_reference, by_title


Progress = Callable[[str, int, "int | None"], None]  # stage (reading, checking, writing), done, total


class _OutOfTime(Exception):
    pass


class _Pace:
    """Tells the caller how far the import is, and stops it once its time is up."""

    EVERY = 200  # rows between two reports

    def __init__(self, progress: Progress | None, deadline: float | None) -> None:
        self.progress = progress
        self.deadline = deadline

    def __call__(self, stage: str, done: int, total: int | None = None) -> None:
        if done % self.EVERY:
            return
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _OutOfTime
        if self.progress is not None:
            self.progress(stage, done, total)


def import_listings(
    session: Session,
    firm: Firm,
    filename: str,
    content: bytes,
    *,
    valid_only: bool = False,
    publish: bool = True,
    limits: ImportLimits | None = None,
    max_bytes: int | None = None,
    max_rows: int | None = None,
    progress: Progress | None = None,
    deadline: float | None = None,
) -> ImportReport:
    """Read, check every row, then write all rows (or, with `valid_only`, the valid ones).

    Nothing is written when the report has file errors, or row errors without `valid_only`.
    The caller commits when `report.written`, and rolls back otherwise. `limits` bound the
    reading (the defaults when None); `max_bytes` and `max_rows` replace two of them.
    `progress` is told every few hundred rows how far the import is; past `deadline` (a
    time.monotonic() value) the import stops with a file error, and the caller rolls back.
    """
    report = ImportReport(filename=filename or "")
    bounds = (limits or LIMITS).but(max_bytes=max_bytes, max_rows=max_rows)
    pace = _Pace(progress, deadline)
    try:
        _import(session, firm, filename or "", content, report, bounds, pace, valid_only=valid_only,
                publish=publish)
    except FileProblem as exc:
        report.file_errors.append(exc.message)
    except _OutOfTime:
        report.out_of_time = True
        report.row_errors.clear()
        report.created = report.updated = report.skipped = 0
        report.written = False
        report.file_errors.append(_l(
            "The import took more than %(s)s seconds and was stopped: nothing was written. Split the file "
            "into smaller ones.", s=number(bounds.max_seconds)))
    return report


def _import(session: Session, firm: Firm, filename: str, content: bytes, report: ImportReport,
            bounds: ImportLimits, pace: _Pace, *, valid_only: bool, publish: bool) -> None:
    rows = _read(firm, filename, content, report, bounds, pace)
    if not rows and not report.file_errors:
        report.file_errors.append(_l("The file has a header line but no listing under it."))
    if report.file_errors:
        return

    by_reference, by_title = _existing(session, firm)
    # Held for the whole import: the session keeps only weak references, so each listing's lookup
    # of its code and family would otherwise read them again (and flush first), several times a row.
    reference_rows = [*session.scalars(select(LowCode)), *session.scalars(select(MaterialFamily))]
    seen_references: dict[str, int] = {}
    headers = report.headers
    for checked, row in enumerate(rows):
        pace("checking", checked, len(rows))
        reference = row.data.get("reference")
        reference = str(reference).strip() if reference not in (None, "") else None
        if reference and reference in seen_references:
            report.row_errors.append(RowError(row.line, headers.get("reference", "reference"), _l(
                "This reference already appears on line %(line)s.", line=seen_references[reference])))
            continue
        if reference:
            seen_references[reference] = row.line
            row.target = by_reference.get(reference[:64])
        elif row.data.get("title") and row.data.get("kind"):
            # Without a reference, the same kind and title as one of the firm's listings is that listing.
            kind = {"offre": "offer", "besoin": "need"}.get(fold(row.data["kind"]), fold(row.data["kind"]))
            row.target = by_title.get((kind, fold(row.data["title"])))
        if row.target is not None and row.data.get("anonymous") in (None, ""):
            row.data.pop("anonymous", None)  # not said: unchanged (see the module's docstring)
        if "site" in row.data:
            site_value = row.data.pop("site")
            if site_value not in (None, ""):
                site_id = _site_id(firm, site_value)
                if site_id is None:
                    report.row_errors.append(RowError(row.line, headers.get("site", "site"), _l(
                        "Unknown site: use the name of one of your sites.")))
                    continue
                row.data["site_id"] = site_id
        try:
            listing_service.clean_listing(session, firm, row.data)
        except ValidationError as exc:
            for name, message in exc.errors.items():
                column = "site" if name == "site_id" else name
                report.row_errors.append(RowError(row.line, headers.get(column, str(FIELD_LABELS.get(column, column))),
                                                  message))
    bad = set(report.bad_lines)
    if bad and not valid_only:
        return
    created: list[Listing] = []  # written by batches: one round trip for many rows, not three per row

    def write_created() -> None:
        if created:
            session.flush()
            for listing in created:
                listing_service.listing_created(session, listing)
            session.flush()
            created.clear()

    for written, row in enumerate(rows):
        pace("writing", written, len(rows))
        if row.line in bad:
            report.skipped += 1
            continue
        if row.target is not None:
            write_created()
            listing_service.update_listing(session, row.target, row.data)
            report.updated += 1
        else:
            listing = listing_service.create_listing(session, firm, row.data, publish=publish, flush=False)
            created.append(listing)
            report.created += 1
            if listing.reference:
                by_reference[listing.reference] = listing
            else:
                by_title.setdefault((listing.kind.value, fold(listing.title)), listing)
            if len(created) >= WRITE_BATCH:
                write_created()
    write_created()
    report.written = report.created + report.updated > 0
    del reference_rows


def _header(cells: list[Any], report: ImportReport) -> dict[int, str]:
    """Column index → field, from the header line; unknown columns are ignored with a warning."""
    columns: dict[int, str] = {}
    unknown: list[str] = []
    for index, cell in enumerate(cells):
        name = str(cell).strip() if cell is not None else ""
        if not name:
            continue
        column = ALIASES.get(fold(name))
        if column is None:
            unknown.append(name[:60])
        elif column in report.headers:
            raise FileProblem(_l("The columns %(a)s and %(b)s say the same thing; keep one.",
                                 a=report.headers[column], b=name[:60]))
        else:
            columns[index] = column
            report.headers[column] = name[:60]
    missing = [c for c in REQUIRED if c not in report.headers]
    if missing:
        if not columns:
            raise FileProblem(_l(
                "No known column in the first line. Start from the template: its first line names the columns."))
        raise FileProblem(_l("Missing columns: %(columns)s.",
                             columns=", ".join(str(FIELD_LABELS[c]) for c in missing)))
    if unknown:
        report.warnings.append(_l("Columns ignored: %(columns)s.", columns=", ".join(unknown[:10])))
    return columns


def _read(firm: Firm, filename: str, content: bytes, report: ImportReport, limits: ImportLimits,
          pace: _Pace | None = None) -> list[_Row]:
    if not content or not content.strip():
        raise FileProblem(_l("The file is empty."))
    if len(content) > limits.max_bytes:
        raise FileProblem(_l("The file is too large (at most %(mb)s MB).", mb=limits.max_bytes // (1024 * 1024)))
    columns: dict[int, str] | None = None
    rows: list[_Row] = []
    max_rows = limits.max_rows
    last_line = 0  # the last line holding a value
    for line, cells in _rows(filename, content, report, limits):
        if pace is not None:
            pace("reading", line)
        if line > limits.max_lines:
            raise FileProblem(_l(
                "The file goes on past line %(max)s; at most %(max)s lines are read, empty ones included. "
                "Delete the empty lines below the table, or split the file.", max=number(limits.max_lines)))
        if _is_empty(cells):
            continue  # costs one step; the line limit bounds how many there can be
        if len(cells) > limits.max_columns:
            if not _is_empty(cells[limits.max_columns:]):
                last = max(i for i, c in enumerate(cells) if not _is_empty([c])) + 1
                raise FileProblem(_l(
                    "Line %(line)s goes as far as column %(column)s; at most %(max)s columns are read. "
                    "Delete the columns to the right of the table.", line=number(line), column=number(last),
                    max=number(limits.max_columns)))
            cells = cells[:limits.max_columns]
        if line - last_line - 1 >= limits.max_empty_run:
            raise FileProblem(_l(
                "Line %(line)s comes after %(n)s empty lines: the table must be one block, starting at "
                "the top of the sheet. Delete the empty lines.", line=number(line), n=number(line - last_line - 1)))
        last_line = line
        if any(isinstance(c, str) and len(c) > MAX_FIELD_CHARS for c in cells):
            raise FileProblem(_l("Line %(line)s has a cell far too long: is this really a table of listings?",
                                 line=line))
        if columns is None:
            columns = _header(cells, report)
            continue
        if len(rows) >= max_rows:
            raise FileProblem(_l("Too many rows: at most %(n)s listings per file.", n=max_rows))
        rows.append(_Row(line, _row_data(columns, cells)))
        report.rows += 1
    if columns is None:
        raise FileProblem(_l("The file is empty."))
    return rows


# --- templates ---------------------------------------------------------------------------------

TEMPLATE_COLUMNS = ("reference", "kind", "title", "description", "low_code", "quantity", "unit", "frequency",
                    "radius_km", "site", "hazardous", "accepts_hazardous", "anonymous", "price_eur_per_unit",
                    "available_from", "available_until")
EXAMPLES = {
    "fr": [
        ["CH-01", "offre", "Chutes de chambres à air", "Butyl, coupées ou entières", "16 01 03", "15", "kg",
         "mensuel", "", "", "non", "", "non", "0", "", ""],
        ["BS-02", "besoin", "Sciure pour litière", "Sèche, non traitée", "03 01 05", "2", "t", "mensuel", "40", "",
         "", "non", "oui", "", "01/09/2026", ""],
    ],
    "en": [
        ["CH-01", "offer", "Inner tube offcuts", "Butyl, cut or whole", "16 01 03", "15", "kg", "monthly", "", "",
         "no", "", "no", "0", "", ""],
        ["BS-02", "need", "Sawdust for animal bedding", "Dry, untreated", "03 01 05", "2", "t", "monthly", "40", "",
         "", "no", "yes", "", "2026-09-01", ""],
    ],
}


def template_headers(lang: str) -> list[str]:
    return [COLUMNS[c][1] if lang == "fr" else COLUMNS[c][0] for c in TEMPLATE_COLUMNS]


def template_csv(lang: str = "fr") -> bytes:
    """A CSV to fill in: ';' and a UTF-8 byte order mark, which French Excel opens without garbling."""
    lang = "fr" if lang == "fr" else "en"
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";" if lang == "fr" else ",", lineterminator="\r\n")
    writer.writerow(template_headers(lang))
    writer.writerows(EXAMPLES[lang])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def template_xlsx(lang: str = "fr") -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.datavalidation import DataValidation

    lang = "fr" if lang == "fr" else "en"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Annonces" if lang == "fr" else "Listings"
    sheet.append(template_headers(lang))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for example in EXAMPLES[lang]:
        sheet.append([float(v) if v and i in (5, 8, 13) else v for i, v in enumerate(example)])
    for letter in "ABCDEFGHIJKLMNOP":
        sheet.column_dimensions[letter].width = 18
    sheet.column_dimensions["C"].width = 34
    sheet.column_dimensions["D"].width = 34
    sheet.freeze_panes = "A2"
    # Text cells, so Excel keeps the leading zero of a waste code such as 03 01 05.
    for row in range(2, 2001):
        sheet.cell(row=row, column=5).number_format = "@"
    lists = {
        "B": "offre,besoin" if lang == "fr" else "offer,need",
        "G": "t,kg,m3,L,unit",
        "H": "ponctuel,hebdomadaire,mensuel,trimestriel,annuel" if lang == "fr"
        else "once,weekly,monthly,quarterly,yearly",
    }
    for letter, values in lists.items():
        check = DataValidation(type="list", formula1=f'"{values}"', allow_blank=True)
        check.add(f"{letter}2:{letter}2000")
        sheet.add_data_validation(check)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
