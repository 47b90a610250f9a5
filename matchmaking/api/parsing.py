"""Reading requests: the JSON body and the query string, checked against the same marshmallow
schemas the OpenAPI document shows. Shape problems (unknown field, wrong JSON type, number out of
range) are reported per field before the services check meaning (a valid SIRET, a known commune)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import request
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from ..services.errors import ValidationError

# Above 2**53 a JSON number loses precision in most clients; nothing here is that large.
MAX_NUMBER = 2.0**53
MAX_INT = 2**31 - 1  # the database's integer ids


class BodyError(BadRequest):
    def __init__(self, detail: Any) -> None:
        super().__init__()
        self.problem_detail = detail


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bad_text(value: str) -> bool:
    # PostgreSQL refuses NUL in text; lone surrogates cannot be encoded as UTF-8.
    return "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value)


def _type_error(field: fields.Field[Any], value: Any) -> Any:
    """The message for a value of the wrong JSON type, or None when it fits the field."""
    if isinstance(field, fields.Boolean):
        return None if isinstance(value, bool) else _l("Expected true or false.")
    if isinstance(field, fields.Number):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _l("This field must be a number.")
        # Compare ints exactly: a thousand-digit int cannot even become a float.
        if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > MAX_NUMBER:
            return _l("This number is out of range.")
        if isinstance(field, fields.Integer):
            if isinstance(value, float) and not value.is_integer():
                return _l("This field must be a whole number.")
            if abs(value) > MAX_INT:
                return _l("This number is out of range.")
        return None
    if isinstance(field, fields.Enum):
        choices = [str(getattr(member, "value", member)) for member in field.enum]
        if not isinstance(value, str) or value not in choices:
            return _l("Must be one of: %(choices)s.", choices=", ".join(choices))
        return None
    if isinstance(field, fields.String | fields.Date | fields.DateTime):
        if not isinstance(value, str):
            return _l("This field must be text.")
        if _bad_text(value):
            return _l("This text contains characters that are not allowed.")
        allowed = field.metadata.get("enum")
        if allowed and value not in allowed:
            return _l("Must be one of: %(choices)s.", choices=", ".join(allowed))
        return None
    if isinstance(field, fields.Dict):
        return None if isinstance(value, dict) else _l("Expected an object.")
    if isinstance(field, fields.List):
        return None if isinstance(value, list) else _l("Expected a list.")
    return None


def check_shape(schema: Schema, data: Any, prefix: str = "") -> dict[str, Any]:
    """Field → message for every shape problem of `data` against `schema` (nested: "firm.siret")."""
    errors: dict[str, Any] = {}
    if not isinstance(data, dict):
        errors[prefix.rstrip(".") or "body"] = _l("Expected an object.")
        return errors
    by_key = {field.data_key or name: field for name, field in schema.fields.items()}
    for key in data:
        if key not in by_key:
            errors[prefix + str(key)] = _l("Unknown field.")
    for key, field in by_key.items():
        if key not in data:
            if field.required:
                errors[prefix + key] = _l("This field is required.")
            continue
        value = data[key]
        if value is None:
            if not field.allow_none:
                errors[prefix + key] = _l("This field cannot be null.")
            continue
        if isinstance(field, fields.Nested):
            nested = field.schema
            errors.update(check_shape(nested, value, prefix + key + "."))
            continue
        message = _type_error(field, value)
        if message is not None:
            errors[prefix + key] = message
    return errors


def json_body(schema: type[Schema]) -> dict[str, Any]:
    """The request's JSON object, checked against `schema`; raises a 400, 415 or 422 problem."""
    data, errors = json_body_partial(schema)
    if errors:
        raise ValidationError(errors)
    return data


def json_body_partial(schema: type[Schema]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The body without its ill-shaped fields, and their errors: pass both to `all_errors` so the
    caller sees every problem of a request at once, shape and meaning alike."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType()
    raw = request.get_data(cache=True)  # MAX_CONTENT_LENGTH applies: 413 beyond it
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise BodyError(_l("The request body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise BodyError(_l("The request body must be a JSON object."))
    errors = check_shape(schema(), data)
    return _without(data, errors), errors


def _without(data: dict[str, Any], errors: dict[str, Any]) -> dict[str, Any]:
    """A copy of `data` without the (possibly nested, dotted) fields named in `errors`."""
    out = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    for path in errors:
        head, _, rest = path.partition(".")
        if rest and isinstance(out.get(head), dict):
            out[head] = _without(out[head], {rest: None})
        else:
            out.pop(head, None)
    return out


@contextmanager
def all_errors(shape_errors: dict[str, Any]) -> Iterator[None]:
    """Run the service on the well-shaped part, then report its errors with the shape errors
    (which win for their fields); the error handler rolls back whatever the service flushed."""
    try:
        yield
    except ValidationError as exc:
        raise ValidationError(exc.errors | shape_errors) from None
    if shape_errors:
        raise ValidationError(shape_errors)


def _query_value(field: fields.Field[Any], raw: str) -> Any:
    """Convert one query-string value; raises ValueError with the message to show."""
    if _bad_text(raw):
        raise ValueError(_l("This text contains characters that are not allowed."))
    if isinstance(field, fields.Boolean):
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "oui", "on"}:
            return True
        if lowered in {"0", "false", "no", "non", "off", ""}:
            return False
        raise ValueError(_l("Expected true or false."))
    if isinstance(field, fields.Integer):
        try:
            number = int(raw.strip())
        except ValueError:
            raise ValueError(_l("This field must be a whole number.")) from None
        low, high = field.metadata.get("minimum", -MAX_INT), field.metadata.get("maximum", MAX_INT)
        if not low <= number <= high:
            raise ValueError(_l("Must be between %(low)s and %(high)s.", low=low, high=high))
        return number
    if isinstance(field, fields.Number):
        try:
            value = float(raw.strip().replace(",", "."))
        except ValueError:
            raise ValueError(_l("This field must be a number.")) from None
        low, high = field.metadata.get("minimum", -MAX_NUMBER), field.metadata.get("maximum", MAX_NUMBER)
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(_l("Must be between %(low)s and %(high)s.", low=low, high=high))
        return value
    if isinstance(field, fields.Enum):
        for member in field.enum:
            if raw == member.value:
                return member
        choices = ", ".join(str(m.value) for m in field.enum)
        raise ValueError(_l("Must be one of: %(choices)s.", choices=choices))
    if len(raw) > 500:
        raise ValueError(_l("At most %(n)s characters.", n=500))
    return raw.strip()


def query_args(schema: type[Schema]) -> dict[str, Any]:
    """The query parameters declared by `schema`, converted; other parameters are ignored."""
    out: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for name, field in schema().fields.items():
        key = field.data_key or name
        if key not in request.args:
            continue
        try:
            out[name] = _query_value(field, request.args[key])
        except ValueError as exc:
            errors[key] = exc.args[0]
    if errors:
        raise ValidationError(errors)
    return out
