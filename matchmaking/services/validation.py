"""Field checks shared by every entry point: each returns a clean value or raises with a message."""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l

SIRET_RE = re.compile(r"^\d{14}$")
NAF_RE = re.compile(r"^\d{2}\.\d{2}[A-Z]$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# La Poste's establishments share one SIREN and follow another checksum (INSEE rule).
LA_POSTE_SIREN = "356000000"


class FieldError(ValueError):
    """A problem with one value; the caller knows which field it came from."""

    def __init__(self, message: Any) -> None:
        super().__init__(str(message))
        self.message = message


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def siret(value: Any) -> str:
    text = re.sub(r"[\s.]", "", str(value or ""))
    if not text:
        raise FieldError(_l("The SIRET number is required."))
    if not SIRET_RE.match(text):
        raise FieldError(_l("A SIRET number has exactly 14 digits."))
    if text.startswith(LA_POSTE_SIREN) and text != LA_POSTE_SIREN + "00013":
        if sum(int(c) for c in text) % 5 != 0:
            raise FieldError(_l("This SIRET number is invalid: its check digit does not match."))
    elif not luhn_ok(text):
        raise FieldError(_l("This SIRET number is invalid: its check digit does not match."))
    return text


def naf(value: Any) -> str | None:
    text = str(value or "").strip().upper().replace(" ", "")
    if not text:
        return None
    if re.fullmatch(r"\d{4}[A-Z]", text):  # "1610A" as often typed
        text = text[:2] + "." + text[2:]
    if not NAF_RE.match(text):
        raise FieldError(_l("A NAF code looks like 16.10A."))
    return text


def text(value: Any, *, max_length: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise FieldError(_l("This field must be text."))
    cleaned = " ".join(value.split()) if "\n" not in value else value.strip()
    if required and not cleaned:
        raise FieldError(_l("This field is required."))
    if len(cleaned) > max_length:
        raise FieldError(_l("At most %(n)s characters.", n=max_length))
    return cleaned


def email(value: Any) -> str:
    cleaned = text(value, max_length=254, required=True).lower()
    if not EMAIL_RE.match(cleaned):
        raise FieldError(_l("This e-mail address is not valid."))
    return cleaned


def number(value: Any, *, minimum: float | None = None, maximum: float | None = None,
           required: bool = True, strictly_positive: bool = False) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FieldError(_l("This field is required."))
        return None
    if isinstance(value, bool):
        raise FieldError(_l("This field must be a number."))
    if isinstance(value, str):
        value = value.strip().replace("\u202f", "").replace(" ", "").replace(",", ".")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise FieldError(_l("This field must be a number.")) from None
    if not math.isfinite(result):
        raise FieldError(_l("This field must be a number."))
    if strictly_positive and result <= 0:
        raise FieldError(_l("Must be greater than zero."))
    if minimum is not None and result < minimum:
        raise FieldError(_l("Must be at least %(n)s.", n=minimum))
    if maximum is not None and result > maximum:
        raise FieldError(_l("Must be at most %(n)s.", n=maximum))
    return result


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int | float):
        return bool(value)
    lowered = str(value).strip().lower()
    if lowered in {"", "0", "false", "no", "non", "off", "n", "f"}:
        return False
    if lowered in {"1", "true", "yes", "oui", "on", "y", "o", "t", "x"}:
        return True
    raise FieldError(_l("Expected yes or no."))


def iso_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    raw = str(value).strip()
    if m := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", raw):  # French 31/12/2026
        raw = f"{m[3]}-{int(m[2]):02d}-{int(m[1]):02d}"
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FieldError(_l("A date looks like 2026-12-31.")) from None


def choice(value: Any, allowed: dict[str, str], label: Any) -> str:
    """A value among `allowed` (accepted spellings → canonical value)."""
    key = str(value or "").strip()
    if key in allowed:
        return allowed[key]
    lowered = key.lower()
    if lowered in allowed:
        return allowed[lowered]
    raise FieldError(label)


class Collector:
    """Gathers every field's problem before failing, so the user sees them all at once."""

    def __init__(self) -> None:
        self.errors: dict[str, Any] = {}

    def check(self, field: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FieldError as exc:
            self.errors.setdefault(field, exc.message)
            return None

    def add(self, field: str, message: Any) -> None:
        self.errors.setdefault(field, message)

    def raise_if_any(self) -> None:
        if self.errors:
            from .errors import ValidationError

            raise ValidationError(self.errors)
