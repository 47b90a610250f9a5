"""What an import may cost, and the checks that keep an uploaded workbook within it.

A spreadsheet is a zip of XML parts, and what it declares is not what it costs: a 5 KB file can
announce a sheet of a million rows by sixteen thousand columns, a part can unpack to gigabytes, and
an empty row costs as much to read as a full one. So before the spreadsheet library opens a file:

- the zip's own directory is read (sizes and ratios as declared; the zip reader never unpacks more
  than a member declares, and a member that holds more fails its checksum);
- every worksheet is scanned once, as a stream, with constant memory, stopping at the first limit:
  its declared range, how far down and how far right its cells go, how many XML elements a row has,
  and whether a line of the table comes after a long run of empty lines;
- the shared strings are counted, and the parts read whole are bounded in size.

The limits live in `ImportLimits`; the web page, the worker and the command line all read them
from the application's configuration through `ImportLimits.from_config`.
"""

from __future__ import annotations

import io
import lzma
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError
from xml.parsers import expat
from xml.parsers.expat import ExpatError

from flask_babel import LazyString, format_number
from flask_babel import lazy_gettext as _l

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImportLimits:
    """Every bound on one import. Each can be set in the configuration as IMPORT_<NAME> (upper case)."""

    max_bytes: int = 10 * MiB  # the file as uploaded
    max_rows: int = 20_000  # listings in one file
    max_lines: int = 50_000  # lines of a sheet or CSV file, empty ones included
    max_columns: int = 200  # columns holding a value
    max_empty_run: int = 1_000  # this many empty lines in a row end the table
    max_unpacked_bytes: int = 40 * MiB  # all the parts of an XLSX once unpacked
    max_ratio: int = 100  # a part may unpack to at most this many times its packed size ...
    ratio_floor_bytes: int = 1 * MiB  # ... once it is larger than this
    max_parts: int = 500  # members of the zip
    max_part_bytes: int = 5 * MiB  # each XML part read whole (workbook, styles, properties ...)
    max_sheets: int = 100
    max_shared_strings: int = 200_000
    max_row_elements: int = 10_000  # XML elements in one row: cells, values, runs of rich text
    # Imported during the request: files up to this size (once unpacked, for a workbook) and this
    # many lines, stopped and handed to a worker if they still take longer than inline_seconds
    # (well under the web server's timeout). Every other file is run by a worker ...
    inline_bytes: int = 256 * 1024
    inline_rows: int = 500
    inline_seconds: int = 10
    max_seconds: int = 240  # ... and stopped past this time, before the task's own limits (270 s, 300 s)
    max_memory_bytes: int = 1024 * MiB  # ... and past this much more memory than its worker had before

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ImportLimits:
        overrides: dict[str, int] = {}
        for item in fields(cls):
            key = "IMPORT_" + item.name.upper()
            if config.get(key) not in (None, ""):
                overrides[item.name] = int(config[key])
        return cls(**overrides)

    def but(self, **changes: int | None) -> ImportLimits:
        """These limits with some replaced (None keeps the current value)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


class FileProblem(Exception):
    """The file as a whole cannot be read; the message says why, for the user."""

    def __init__(self, message: Any) -> None:
        super().__init__(str(message))
        self.message = message


def _not_a_workbook() -> FileProblem:
    return FileProblem(_l("This file is not a valid Excel (.xlsx) workbook."))


def number(value: int) -> LazyString:
    """A count written the reader's way (1 048 576 in French), when the message is shown."""
    return LazyString(format_number, value)


def _mb(size: int) -> int:
    return max(1, -(-size // MiB))  # rounded up: 1.2 MB is "2 MB", never "1 MB" over a 1 MB limit


# --- the zip's directory -----------------------------------------------------------------------

_END_OF_DIRECTORY = struct.Struct("<4s4H2LH")


def check_archive(content: bytes, limits: ImportLimits) -> zipfile.ZipFile:
    """The zip, opened once its directory says it stays within the limits."""
    # The end record says how many members and how large the directory is; reading a directory
    # of a hundred thousand members would already cost more than a whole legitimate import.
    at = content.rfind(b"PK\x05\x06", max(0, len(content) - 65_557))
    if at < 0 or at + _END_OF_DIRECTORY.size > len(content):
        raise _not_a_workbook()
    _, _, _, _, entries, directory_size, _, _ = _END_OF_DIRECTORY.unpack_from(content, at)
    if entries > limits.max_parts or directory_size > limits.max_parts * 1024:
        raise FileProblem(_l("This Excel file holds too many parts (at most %(max)s): is it really a table "
                             "of listings?", max=number(limits.max_parts)))
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise _not_a_workbook() from None
    members = archive.infolist()
    if len(members) > limits.max_parts:
        raise FileProblem(_l("This Excel file holds too many parts (at most %(max)s): is it really a table "
                             "of listings?", max=number(limits.max_parts)))
    total = sum(m.file_size for m in members)
    if total > limits.max_unpacked_bytes:
        raise FileProblem(_l(
            "Once unpacked, this Excel file would take %(size)s MB (at most %(max)s MB are read). "
            "Delete what the sheet does not need, or save it as CSV.",
            size=number(_mb(total)), max=number(limits.max_unpacked_bytes // MiB)))
    for member in members:
        if member.file_size > limits.ratio_floor_bytes and \
                member.file_size > limits.max_ratio * max(member.compress_size, 1):
            raise FileProblem(_l(
                "The part %(part)s of this Excel file unpacks to %(ratio)s times its size: such a file is "
                "refused. Save the sheet again from your spreadsheet program, or as CSV.",
                part=member.filename[:80], ratio=number(member.file_size // max(member.compress_size, 1))))
    return archive


# --- worksheets, streamed ----------------------------------------------------------------------

_CELL_REFERENCE = re.compile(r"\$?([A-Za-z]{1,3})\$?([0-9]{1,7})")
_READ_CHUNK = 64 * 1024


def column_index(letters: str) -> int:
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - 64
    return index


def column_letters(index: int) -> str:
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


class _Stop(Exception):
    """Enough has been read."""


# What a damaged part can raise while it is unpacked or parsed.
_XML_ERRORS = (ExpatError, ParseError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, ValueError, EOFError,
               NotImplementedError, UnicodeError)


def _refuse_declarations(*_args: Any) -> None:
    raise _not_a_workbook()  # spreadsheets declare no document type and no entity: expansions are not welcome


def _stream(stream: IO[bytes], start: Any, end: Any = None, text: Any = None) -> None:
    """Feed a part to expat 64 KB at a time, calling the handlers; a handler raising _Stop ends it.

    Handlers without tree building: a tenth of the cost of element trees, and a stop at the first
    limit stops the unpacking too.
    """
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse_declarations
    parser.EntityDeclHandler = _refuse_declarations
    parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    if text is not None:
        parser.CharacterDataHandler = text
    try:
        while chunk := stream.read(_READ_CHUNK):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except _Stop:
        return


@dataclass(slots=True)
class SheetScan:
    """What one worksheet holds, as far as the scan went."""

    name: str
    last_row: int = 0  # the last line holding a value
    last_column: int = 0  # the last column holding a value
    declared: str | None = None  # the range the sheet declares, if any


def _root(archive: zipfile.ZipFile, name: str) -> str | None:
    """The local name of a part's root element, or None when the part is not XML."""
    found: list[str] = []

    def start(tag: str, _attributes: dict[str, str]) -> None:
        found.append(_local(tag))
        raise _Stop

    try:
        with archive.open(name) as stream:
            _stream(stream, start)
    except _XML_ERRORS:
        return None
    return found[0] if found else None


def _declared_range(ref: str, sheet: str, limits: ImportLimits) -> None:
    corners = [_CELL_REFERENCE.fullmatch(part) for part in ref.split(":")]
    if not ref or not all(corners):
        return  # openpyxl reads a range it cannot parse as no range: nothing is padded
    rows = max(int(c.group(2)) for c in corners if c)
    columns = max(column_index(c.group(1)) for c in corners if c)
    if rows > limits.max_lines or columns > limits.max_columns:
        raise FileProblem(_l(
            "The sheet “%(sheet)s” declares the range %(range)s (%(rows)s lines, %(columns)s columns); at most "
            "%(max_rows)s lines and %(max_columns)s columns are read. Delete the unused lines and columns below "
            "and to the right of the table, or save the sheet as CSV.",
            sheet=sheet, range=ref[:40], rows=number(rows), columns=number(columns), max_rows=number(limits.max_lines),
            max_columns=number(limits.max_columns)))


class _SheetWalk:
    """expat handlers for one worksheet; see scan_sheet."""

    def __init__(self, sheet: str, limits: ImportLimits, selected: bool) -> None:
        self.scan = SheetScan(sheet)
        self.limits = limits
        self.selected = selected
        self.in_data = False
        self.row = 0  # the current row's number
        self.column = 0  # the current cell's column
        self.elements = 0  # in the current row
        self.in_value = False
        self.row_has_value = self.cell_has_value = False

    def start(self, name: str, attributes: dict[str, str]) -> None:
        tag = _local(name)
        limits, sheet = self.limits, self.scan.name
        if not self.in_data:
            if tag == "sheetData":
                self.in_data = True
            elif tag == "dimension":
                self.scan.declared = attributes.get("ref") or ""
                if not self.selected:
                    raise _Stop  # the library stops reading this sheet here
                _declared_range(self.scan.declared, sheet, limits)
            return
        if tag == "row":
            raw = attributes.get("r")
            row = int(raw) if raw and raw.isdigit() else self.row + 1
            if row <= self.row:
                raise _not_a_workbook()  # rows go down the sheet, each once
            if row > limits.max_lines:
                raise FileProblem(_l(
                    "The sheet “%(sheet)s” goes on past line %(max)s (as far as line %(line)s); at most "
                    "%(max)s lines are read, empty ones included. Delete the empty lines below the table, or "
                    "split the file.", sheet=sheet, max=number(limits.max_lines), line=number(row)))
            self.row, self.column, self.elements = row, 0, 0
            self.row_has_value = False
            return
        self.elements += 1
        if self.elements > limits.max_row_elements:
            raise FileProblem(_l("Line %(line)s of the sheet “%(sheet)s” holds far too much to be a line "
                                 "of listings.", line=number(self.row), sheet=sheet))
        if tag == "c":
            reference = _CELL_REFERENCE.fullmatch(attributes.get("r") or "")
            self.column = column_index(reference.group(1)) if reference else self.column + 1
            self.cell_has_value = False
        elif tag in ("v", "t"):
            self.in_value = True

    def text(self, data: str) -> None:
        if self.in_value and not data.isspace():
            self.cell_has_value = True

    def end(self, name: str) -> None:
        if not self.in_data:
            return
        tag = _local(name)
        if tag in ("v", "t"):
            self.in_value = False
        elif tag == "c":
            if self.cell_has_value and self.selected:
                if self.column > self.limits.max_columns:
                    raise FileProblem(_l(
                        "Line %(line)s goes as far as column %(column)s; at most %(max)s columns are read. "
                        "Delete the columns to the right of the table.",
                        line=number(self.row), column=column_letters(self.column),
                        max=number(self.limits.max_columns)))
                self.scan.last_column = max(self.scan.last_column, self.column)
            self.row_has_value = self.row_has_value or self.cell_has_value
        elif tag == "row":
            if self.row_has_value and self.selected:
                gap = self.row - self.scan.last_row - 1
                if gap >= self.limits.max_empty_run:
                    raise FileProblem(_l(
                        "Line %(line)s comes after %(n)s empty lines: the table must be one block, starting at "
                        "the top of the sheet. Delete the empty lines.", line=number(self.row), n=number(gap)))
                self.scan.last_row = self.row
        elif tag == "sheetData":
            raise _Stop  # what follows the data is not read by the import


def scan_sheet(stream: IO[bytes], sheet: str, limits: ImportLimits, *, selected: bool) -> SheetScan:
    """Walk one worksheet's rows without keeping them, refusing at the first limit it meets.

    The sheet that will be imported gets every check. Another sheet is only read by the library
    for its size: when it declares one before its data, nothing more is looked at; when it does
    not, the library reads it whole, so its rows get the checks that bound that reading.
    """
    walk = _SheetWalk(sheet, limits, selected)
    _stream(stream, walk.start, walk.end, walk.text)
    return walk.scan


# --- the workbook ------------------------------------------------------------------------------

_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def _read_part(archive: zipfile.ZipFile, name: str, limits: ImportLimits) -> Element | None:
    from xml.etree.ElementTree import fromstring

    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > limits.max_part_bytes:
        return None  # refused by the size check of the parts read whole
    try:
        data = archive.read(name)
        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
            raise _not_a_workbook()
        return fromstring(data)
    except _XML_ERRORS:
        return None


def _relationships(archive: zipfile.ZipFile, part: str, limits: ImportLimits) -> list[tuple[str, str, str]]:
    """(id, type, part name) of the relationships of `part` ("" for the package itself)."""
    folder, base = posixpath.split(part)
    root = _read_part(archive, posixpath.join(folder, "_rels", base + ".rels"), limits)
    found: list[tuple[str, str, str]] = []
    for rel in [] if root is None else root:
        target = rel.get("Target") or ""
        if rel.get("TargetMode") == "External" or not target:
            continue
        name = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        found.append((rel.get("Id") or "", rel.get("Type") or "", name))
    return found


def _sheet_names(archive: zipfile.ZipFile, limits: ImportLimits) -> list[tuple[str, str]]:
    """(sheet name, part name) in the workbook's order, as the spreadsheet library will see them."""
    for _id, kind, book in _relationships(archive, "", limits):
        if not kind.endswith("/officeDocument"):
            continue
        workbook = _read_part(archive, book, limits)
        if workbook is None or _local(workbook.tag) != "workbook":
            continue
        parts = {rel_id: name for rel_id, _kind, name in _relationships(archive, book, limits)}
        return [(sheet.get("name") or "", parts.get(sheet.get(_REL) or "", ""))
                for sheet in workbook.iter() if _local(sheet.tag) == "sheet"]
    return []


@dataclass(slots=True)
class WorkbookScan:
    sheets: dict[str, SheetScan] = field(default_factory=dict)  # by sheet name


def choose_sheet(names: list[str], fold: Any) -> str | None:
    """The sheet imported: one named Annonces or Listings, else the first."""
    folded = {fold(n): n for n in names}
    return next((folded[n] for n in ("annonces", "listings") if n in folded), names[0] if names else None)


def check_workbook(content: bytes, limits: ImportLimits, fold: Any) -> WorkbookScan:
    """Refuse, with the reason, a workbook whose reading would go past a limit; say what it holds."""
    try:
        return _check_workbook(content, limits, fold)
    except FileProblem:
        raise
    except Exception:  # noqa: BLE001 - a damaged zip or XML can raise many kinds: the user gets one answer
        raise _not_a_workbook() from None


def _check_workbook(content: bytes, limits: ImportLimits, fold: Any) -> WorkbookScan:
    with check_archive(content, limits) as archive:
        sheets = _sheet_names(archive, limits)
        if len(sheets) > limits.max_sheets:
            raise FileProblem(_l("This workbook has %(n)s sheets (at most %(max)s): keep the sheet of listings "
                                 "and save it again.", n=number(len(sheets)), max=number(limits.max_sheets)))
        by_part = {part: name for name, part in reversed(sheets) if part}
        worksheets = [name for name, part in sheets if part and _root(archive, part) == "worksheet"]
        selected = choose_sheet(worksheets, fold)
        result = WorkbookScan()
        for member in archive.infolist():
            if member.is_dir():
                continue
            root = _root(archive, member.filename)
            if root is None:
                continue  # pictures and other parts the import never reads
            if root == "worksheet":
                name = by_part.get(member.filename, member.filename)
                with archive.open(member) as stream:
                    scan = scan_sheet(stream, name, limits, selected=name == selected or selected is None)
                result.sheets.setdefault(name, scan)
            elif root == "sst":
                _count_shared_strings(archive, member.filename, limits)
            elif member.file_size > limits.max_part_bytes:
                raise FileProblem(_l(
                    "The part %(part)s of this Excel file is too large (%(size)s MB, at most %(max)s MB). Save the "
                    "sheet again from your spreadsheet program, or as CSV.",
                    part=member.filename[:80], size=number(_mb(member.file_size)),
                    max=number(limits.max_part_bytes // MiB)))
        return result


def _count_shared_strings(archive: zipfile.ZipFile, name: str, limits: ImportLimits) -> None:
    count = 0

    def start(tag: str, _attributes: dict[str, str]) -> None:
        nonlocal count
        if _local(tag) == "si":
            count += 1
            if count > limits.max_shared_strings:
                raise FileProblem(_l(
                    "This Excel file holds more than %(max)s different texts: is it really a table of "
                    "listings?", max=number(limits.max_shared_strings)))

    with archive.open(name) as stream:
        _stream(stream, start)
