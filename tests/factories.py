"""Small builders for tests: make_firm(session, **overrides) and friends."""

from __future__ import annotations

import functools
import io
import itertools
import re
import zipfile
from typing import Any

from matchmaking.services import firms, listings, users

_counter = itertools.count(1)


def luhn_siret(prefix: str) -> str:
    """Complete a 13-digit prefix into a valid 14-digit SIRET."""
    from matchmaking.services.validation import luhn_ok

    for last in "0123456789":
        if luhn_ok(prefix + last):
            return prefix + last
    raise AssertionError("unreachable")


def make_firm(session: Any, **overrides: Any) -> Any:
    n = next(_counter)
    data = {
        "name": f"Entreprise {n}",
        "siret": luhn_siret(f"{900000000 + n:09d}0001"),
        "naf_code": "16.10A",
        "commune_insee": "53271",  # Villaines-la-Juhel
    } | overrides
    return firms.register_firm(session, data)


PASSWORD = "correct horse battery"


@functools.cache
def _password_hash(password: str) -> str:
    """One real argon2 hash per password for the whole run: a tenth of a second saved per account."""
    return users.hash_password(password)


def make_user(session: Any, firm: Any = None, **overrides: Any) -> Any:
    n = next(_counter)
    data = {"email": f"user{n}@example.fr", "password": PASSWORD, "role": "member"} | overrides
    if isinstance(data["password"], str) and len(data["password"]) >= users.MIN_PASSWORD:
        data["password_hash"] = _password_hash(data["password"])
    return users.create_user(session, firm=firm, **data)


def make_listing(session: Any, firm: Any, **overrides: Any) -> Any:
    data = {"kind": "offer", "title": "Chutes de chambres à air", "quantity": 15, "unit": "kg",
            "frequency": "monthly"} | overrides
    return listings.create_listing(session, firm, data)


def hostile_workbook() -> bytes:
    """A 5 KB workbook whose sheet declares the largest range a sheet may have (A1:XFD1048576):
    a reader that trusts it allocates for 17 billion cells."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["type", "titre", "quantité", "unité", "fréquence"])
    book.active.append(["offre", "Sciure", 3, "t", "mensuel"])
    buffer = io.BytesIO()
    book.save(buffer)
    source, hostile = zipfile.ZipFile(io.BytesIO(buffer.getvalue())), io.BytesIO()
    with zipfile.ZipFile(hostile, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:XFD1048576"/>', data)
            archive.writestr(info.filename, data)
    return hostile.getvalue()
