"""Fuzzing of what firms type or upload: the CSV/XLSX import and the free-text code suggester.

Hypothesis builds inputs from the shapes real files have (known and misspelt headers, French and
English values, numbers, dates, codes, formulas, control characters, several encodings and
separators) and then damages them (bytes flipped, cut, inserted). For every input:

- no exception escapes: the import returns a report, the suggester an answer;
- no hang: each input has a time limit (a hard alarm, and an assertion on the time taken);
- always a clear outcome: a file error or row errors with a line, a column and a message in words,
  or every row written; and what was written goes into the database (flush) without error.

FUZZ_EXAMPLES scales the number of inputs (default: a CI-sized run); FUZZ_RANDOM=1 draws new
inputs each run instead of the fixed sequence. Counts are appended to test-output/fuzz.txt.
"""

from __future__ import annotations

import io
import math
import os
import re
import signal
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from matchmaking.matching import taxonomy
from matchmaking.services import imports, matching
from tests.factories import make_firm

SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))
DERANDOMIZE = os.environ.get("FUZZ_RANDOM", "") != "1"
REPORT = Path(__file__).resolve().parents[2] / "test-output" / "fuzz.txt"
TALLY: dict[str, Counter[str]] = {}
IMPORT_SECONDS = 10.0  # one small file: milliseconds in practice, seconds on a busy machine
SUGGEST_SECONDS = 1.0
HARD_LIMIT_S = 30  # beyond this the input is taken as a hang and the test fails


def _settings(examples: int) -> Callable[[Any], Any]:
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=DERANDOMIZE,
                    database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if TALLY:
        REPORT.parent.mkdir(exist_ok=True)
        backend = "postgresql" if os.environ.get("TEST_DATABASE_URL") else "sqlite"
        with REPORT.open("a") as out:
            for target, counts in sorted(TALLY.items()):
                line = " ".join(f"{key}={counts[key]}" for key in sorted(counts))
                out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {backend} {target}: {line}\n")


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Interrupt the input after `seconds` (SIGALRM: main thread, which is where pytest runs tests)."""

    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _tried(target: str, outcome: str) -> None:
    counts = TALLY.setdefault(target, Counter())
    counts["cases"] += 1
    counts[outcome] += 1


# --- inputs --------------------------------------------------------------------------------------

HEADERS = sorted({spelling for column, (en, fr, others) in imports.COLUMNS.items()
                  for spelling in (column, en, fr, *others)})
VALUES = [
    "offre", "besoin", "offer", "need", "Offre ", "OFFRE", "don", "", " ", "Chutes de chambres à air",
    "Sciure pour litière", "sciure; copeaux", "a\nb", "\"quoted\"", "16 01 03", "160103", "03 01 05", "99 99 99",
    "16 01 03*", "17 06 05*", "1,5", "2.5", "-3", "0", "1e308", "1e309", "nan", "inf", "-inf", "1 000", "1\u202f000,5",
    "t", "kg", "m3", "m³", "L", "unit", "unité", "barrique", "mensuel", "monthly", "parfois", "ponctuel",
    "31/02/2026", "01/09/2026", "2026-09-01", "9999-12-31", "0000-00-00", "oui", "non", "yes", "no", "vrai", "2",
    "53271", "53147", "61001", "72181", "99999", "2A004", "=HYPERLINK(\"http://x\")", "@SUM(A1)", "+33 1 23",
    "\x00", "\x1b[31m", "\ufeff", "\u202e", "é" * 300, "x" * 5000, "🙂", "\ud83d", "<script>alert(1)</script>",
    "Robert'); DROP TABLE listing;--", "%s%n", "{{7*7}}", "../../etc/passwd",
]
cell_text = st.one_of(st.sampled_from(VALUES), st.text(max_size=40), st.text(alphabet="0123456789 ,.-eE", max_size=12))


GOOD: dict[str, list[str]] = {
    "reference": ["R1", "R2", "R3", "CH-01", "", "0042"],
    "kind": ["offre", "besoin", "offer", "need", "Besoin"],
    "title": ["Chutes de chambres à air", "Sciure pour litière", "Palettes cassées", "Drêches de brasserie",
              "Ferraille mêlée", "Big bags PP usagés"],
    "description": ["", "Sèche, non traitée", "Butyl, coupées ou entières", "Sur palette\nà enlever"],
    "low_code": ["16 01 03", "03 01 05", "15 01 03", "17 04 05", "", "020701", "16 01 03*"],
    "material_family": ["", "rubber", "wood", "metals"],
    "quantity": ["1,5", "3", "0.25", "1000", "12"],
    "unit": ["t", "kg", "m3", "L", "unit", "unité", "tonnes"],
    "frequency": ["mensuel", "monthly", "once", "annuel", "hebdomadaire", "quarterly"],
    "radius_km": ["", "40", "12,5"],
    "site": [""],
    "commune_insee": ["", "53271", "53147", "72181"],
    "hazardous": ["", "oui", "non", "yes", "no"],
    "accepts_hazardous": ["", "oui", "non"],
    "anonymous": ["", "oui", "non", "true"],
    "price_eur_per_unit": ["", "0", "12,50", "3.2"],
    "available_from": ["", "01/09/2026", "2026-09-01"],
    "available_until": ["", "31/12/2027", "2027-12-31"],
}


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    """A header of known columns (each in one of its spellings) and maybe unknown ones, and rows
    whose cells are mostly sensible for their column and sometimes anything at all."""
    optional = [c for c in imports.COLUMNS if c not in imports.REQUIRED]
    columns = list(imports.REQUIRED)
    if draw(st.integers(0, 9)) == 0:
        columns = [c for c in columns if draw(st.booleans())]
    columns += draw(st.lists(st.sampled_from(optional), unique=True, max_size=6))
    columns = draw(st.permutations(columns))
    spellings = {c: draw(st.sampled_from([c, imports.COLUMNS[c][0], imports.COLUMNS[c][1],
                                          *imports.COLUMNS[c][2]])) for c in columns}
    header: list[str | None] = [spellings[c] for c in columns]
    for _ in range(draw(st.integers(0, 2))):
        header.insert(draw(st.integers(0, len(header))), None)  # an unknown column here
    header_cells = [h if h is not None else draw(st.sampled_from(HEADERS) | st.text(max_size=20)) for h in header]
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        row = [draw(st.sampled_from(GOOD[c])) if c in GOOD and draw(st.integers(0, 9)) < 8 else draw(cell_text)
               for c in (columns_by_position(header, columns))]
        if draw(st.integers(0, 9)) == 0:
            row = row[:draw(st.integers(0, len(row)))] + draw(st.lists(cell_text, max_size=2))
        rows.append(row)
    if rows and draw(st.integers(0, 9)) == 0:
        rows.insert(0, ["x" * 4100] * len(rows[0]))  # a long first row: what follows lies beyond the first 4 KB
    return header_cells, rows


def columns_by_position(header: list[str | None], columns: list[str]) -> list[str]:
    """The field of each header position ("" for the unknown ones)."""
    known = iter(columns)
    return [next(known) if h is not None else "" for h in header]


def _csv(header: list[str], rows: list[list[str]], delimiter: str, quoting: int | None) -> str:
    import csv

    if quoting is None:  # joined by hand, as some exports do: separators and quotes inside cells break it
        return "\n".join(delimiter.join(cells) for cells in [header, *rows])
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@st.composite
def damaged(draw: st.DrawFn, content: bytes) -> bytes:
    """Flip, cut, insert or repeat bytes, a few times."""
    data = bytearray(content)
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "repeat"]))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif action == "truncate":
            del data[at:]
        else:
            data[at:at] = data[at:at + 256] * draw(st.integers(1, 20))
    return bytes(data)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[str, bytes]:
    header, rows = draw(tables())
    text = _csv(header, rows, draw(st.sampled_from([";", ",", "\t", "|"])), draw(st.sampled_from([0, 1, None])))
    encoding = draw(st.sampled_from(["utf-8"] * 3 + ["utf-8-sig", "cp1252", "latin-1", "utf-16"]))
    content = text.encode(encoding, errors="replace") if encoding != "utf-8" else text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 3)) == 0:
        content = draw(damaged(content))
    name = draw(st.sampled_from(["annonces.csv"] * 6 + ["a.CSV", "export.txt", "a.xlsx", "", "a.xls", "../../x.csv"]))
    return name, content


def _xlsx_legal(text: str) -> bool:
    """What openpyxl agrees to write (XML has no control characters, UTF-8 no lone surrogates)."""
    return not any((ord(c) < 32 and c not in "\t\n\r") or "\ud800" <= c <= "\udfff" for c in text)


xlsx_cell = st.one_of(
    cell_text.filter(_xlsx_legal),
    st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none(),
    st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(9999, 1, 1)),
    st.dates(min_value=date(1900, 3, 1)),
)


def _as_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _stable(xlsx: bytes) -> bytes:
    """The same workbook gives the same bytes (openpyxl stamps the time of saving), so that
    Hypothesis can replay an input exactly."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>2026-01-01T00:00:00Z", data)
            target.writestr(zipfile.ZipInfo(item.filename, date_time=(2026, 1, 1, 0, 0, 0)), data,
                            compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


@st.composite
def xlsx_files(draw: st.DrawFn) -> tuple[str, bytes]:
    header, rows = draw(tables())
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = draw(st.sampled_from(["Annonces", "Listings", "Feuil1", "Sheet"]))
    if draw(st.integers(0, 9)) == 0:
        book.create_sheet("Autre", 0).append(["rien", 1])
    sheet.append([h for h in header if _xlsx_legal(h)])
    for row in rows:
        cells: list[Any] = []
        for value in row:
            if not _xlsx_legal(value) or draw(st.integers(0, 4)) == 0:
                cells.append(draw(xlsx_cell))
            elif _as_number(value) is not None and draw(st.booleans()):
                cells.append(_as_number(value))  # a spreadsheet keeps numbers as numbers
            else:
                cells.append(value)
        sheet.append(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    content = _stable(buffer.getvalue())
    if draw(st.integers(0, 3)) == 0:
        content = draw(damaged(content))
    return draw(st.sampled_from(["annonces.xlsx"] * 4 + ["a.XLSX", "a.csv", "a.xlsm"])), content


@st.composite
def odd_zips(draw: st.DrawFn) -> tuple[str, bytes]:
    """Archives that look like workbooks from far: wrong parts, huge claimed sizes, nested junk."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in draw(st.lists(st.sampled_from([
            "[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet1.xml", "_rels/.rels",
            "xl/_rels/workbook.xml.rels", "xl/sharedStrings.xml", "docProps/app.xml", "hello.txt",
        ]), unique=True, max_size=6)):
            archive.writestr(name, draw(st.sampled_from([
                b"", b"<x/>", b"<?xml version='1.0'?><workbook/>", b"\x00\x01", b"<" * 1000,
                b"<!DOCTYPE x [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>]><x>&b;</x>",
            ])) + draw(st.binary(max_size=64)))
    return "annonces.xlsx", buffer.getvalue()


# --- the checks ----------------------------------------------------------------------------------


def _check_import(session: Any, firm: Any, target: str, filename: str, content: bytes, valid_only: bool) -> None:
    outcome = "exception"
    try:
        started = time.perf_counter()
        with time_limit(HARD_LIMIT_S):
            report = imports.import_listings(session, firm, filename, content, valid_only=valid_only)
            session.flush()  # what the service wrote must be storable (lengths, NUL, constraints)
        elapsed = time.perf_counter() - started
        assert elapsed < IMPORT_SECONDS, f"{elapsed:.1f} s for one file"
        assert isinstance(report, imports.ImportReport)
        for message in report.file_errors:
            assert str(message).strip()
        for error in report.row_errors:
            assert error.line >= 1 and str(error.column).strip() and str(error.message).strip()
        if report.file_errors:
            assert not report.written and not report.row_errors
            outcome = "file_error"
        elif report.row_errors and not valid_only:
            assert not report.written and report.created == report.updated == 0
            outcome = "row_errors"
        else:
            assert report.created + report.updated + report.skipped == report.rows
            outcome = "written" if report.written else "row_errors"
    except Exception:
        outcome = "failure"
        raise
    finally:
        _tried(target, outcome)
        session.rollback()


@pytest.fixture()
def firm(session: Any) -> Any:
    firm = make_firm(session)
    session.commit()
    return firm


@_settings(300)
@given(upload=csv_files(), valid_only=st.booleans())
def test_any_csv_file_gives_a_report_never_an_exception_nor_a_hang(session, firm, upload, valid_only) -> None:
    _check_import(session, firm, "import.csv", *upload, valid_only)


@_settings(120)
@given(upload=xlsx_files(), valid_only=st.booleans())
def test_any_xlsx_file_gives_a_report_never_an_exception_nor_a_hang(session, firm, upload, valid_only) -> None:
    _check_import(session, firm, "import.xlsx", *upload, valid_only)


@_settings(60)
@given(upload=odd_zips() | st.tuples(st.sampled_from(["a.csv", "a.xlsx"]), st.binary(max_size=4096)))
def test_archives_and_raw_bytes_give_a_report(session, firm, upload) -> None:
    _check_import(session, firm, "import.bytes", *upload, False)


# --- the code suggester --------------------------------------------------------------------------

WORDS = ["chutes", "de", "chambres", "à", "air", "sciure", "bois", "palettes", "drêches", "brasserie", "huile",
         "usagée", "ferraille", "verre", "plastique", "PEHD", "carton", "boues", "amiante", "dangereux",
         "pour", "litière", "volailles", "inner", "tubes", "rubber", "sawdust", "17 04 05", "16 01 03*", "x"]
free_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(WORDS) | st.text(max_size=8), max_size=60).map(" ".join),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=2000),
    st.sampled_from(["", " ", "\x00", "é" * 2000, "a " * 1000, "-" * 2000, "16 01 03 " * 200, "\ud83d\ude42" * 500]),
)


@_settings(400)
@given(text=free_text, k=st.integers(0, 8))
def test_the_code_suggester_answers_any_text_quickly_with_known_codes(text, k) -> None:
    outcome = "failure"
    try:
        started = time.perf_counter()
        with time_limit(HARD_LIMIT_S):
            suggestion = taxonomy.suggest_codes(text, k=k)
        elapsed = time.perf_counter() - started
        if elapsed >= SUGGEST_SECONDS:  # a busy machine, or really slow? Slow again is slow.
            started = time.perf_counter()
            taxonomy.suggest_codes(text, k=k)
            elapsed = min(elapsed, time.perf_counter() - started)
        assert elapsed < SUGGEST_SECONDS, f"{elapsed:.2f} s for {len(text)} characters"
        known = taxonomy.suggester().codes
        assert len(suggestion.codes) <= k
        scores = [score for _, score in suggestion.codes]
        assert all(code in known for code, _ in suggestion.codes)
        assert all(math.isfinite(s) and 0 < s <= 1 for s in scores) and scores == sorted(scores, reverse=True)
        assert suggestion.family is None or isinstance(suggestion.family, str)
        outcome = "suggested" if suggestion.codes else "nothing"
    finally:
        _tried("suggest_codes", outcome)


@_settings(150)
@given(text=free_text)
def test_classify_as_the_api_and_forms_call_it(text) -> None:
    outcome = "failure"
    try:
        with time_limit(HARD_LIMIT_S):
            result = matching.classify(text, k=5)
        assert set(result) == {"suggestions", "material_family"} and len(result["suggestions"]) <= 5
        assert all(s["label_fr"] and s["label_en"] for s in result["suggestions"])
        outcome = "answered"
    finally:
        _tried("classify", outcome)

