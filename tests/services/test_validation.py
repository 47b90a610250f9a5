from datetime import date

import pytest

from matchmaking.services import validation as v


@pytest.mark.parametrize("siret", ["73282932000074", "732 829 320 00074", "35600000000010"])
def test_valid_sirets_are_accepted(siret: str) -> None:
    assert v.siret(siret) == siret.replace(" ", "")


@pytest.mark.parametrize(
    ("siret", "fragment"),
    [
        ("73282932000075", "check digit"),
        ("7328293200007", "14 digits"),
        ("ABCDEFGHIJKLMN", "14 digits"),
        ("", "required"),
        ("35600000000049", "check digit"),
    ],
)
def test_invalid_sirets_say_why(app, siret: str, fragment: str) -> None:
    with app.test_request_context(headers={"Accept-Language": "en"}), pytest.raises(v.FieldError) as info:
        v.siret(siret)
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert fragment in str(info.value.message)


def test_luhn_matches_known_values() -> None:
    assert v.luhn_ok("79927398713")
    assert not v.luhn_ok("79927398710")


@pytest.mark.parametrize(("raw", "clean"), [("16.10A", "16.10A"), ("1610a", "16.10A"), ("", None)])
def test_naf_codes_are_normalised(raw: str, clean: str | None) -> None:
    assert v.naf(raw) == clean


def test_numbers_accept_french_decimal_comma() -> None:
    assert v.number("1 250,5") == 1250.5


@pytest.mark.parametrize("bad", ["abc", "nan", "inf", True, [1]])
def test_numbers_reject_non_numbers(app, bad: object) -> None:
    with app.test_request_context(), pytest.raises(v.FieldError):
        v.number(bad)


def test_dates_accept_iso_and_french_forms() -> None:
    assert v.iso_date("2026-12-31") == date(2026, 12, 31)
    assert v.iso_date("31/12/2026") == date(2026, 12, 31)
    with pytest.raises(v.FieldError):
        v.iso_date("31/13/2026")


def test_text_is_bounded(app) -> None:
    assert v.text("  a   b ", max_length=5) == "a b"
    with app.test_request_context(), pytest.raises(v.FieldError):
        v.text("x" * 6, max_length=5)
