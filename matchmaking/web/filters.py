"""Template helpers: quantities, units and frequencies in the reader's language."""

from __future__ import annotations

from typing import Any

from flask_babel import format_decimal, get_locale
from flask_babel import lazy_gettext as _l

from ..services.queries import score_band
from . import bp

UNIT_LABELS = {"t": _l("t"), "kg": _l("kg"), "m3": _l("m³"), "L": _l("L"), "unit": _l("units")}
FREQUENCY_LABELS = {
    "once": _l("once"),
    "weekly": _l("per week"),
    "monthly": _l("per month"),
    "quarterly": _l("per quarter"),
    "yearly": _l("per year"),
}


@bp.app_template_filter("quantity")
def quantity(value: float | None) -> str:
    if value is None:
        return ""
    return str(format_decimal(value, format="#,##0.###"))


@bp.app_template_filter("unit_label")
def unit_label(value: str) -> str:
    return str(UNIT_LABELS.get(value, value))


@bp.app_template_filter("frequency_label")
def frequency_label(value: str) -> str:
    return str(FREQUENCY_LABELS.get(value, value))

# A score in words (``queries.score_band``): a chance of 35 % reads as a poor mark, while a match
# that good is worth a call.
SCORE_LABELS = {"very_good": _l("Very good lead"), "good": _l("Good lead"), "possible": _l("Possible lead"),
                "weak": _l("Weak lead")}


@bp.app_template_filter("score_label")
def score_label(score: float) -> str:
    return str(SCORE_LABELS[score_band(score)])


@bp.app_context_processor
def locale_context() -> dict[str, Any]:
    return {"current_locale": str(get_locale() or "fr")}


@bp.app_template_global()
def site_options(firm: Any) -> list[tuple[str, str]]:
    return [(str(s.id), f"{s.name} ({s.commune.name})" if s.name != s.commune.name else s.name) for s in firm.sites]


@bp.app_template_filter("km")
def km(value: float | None) -> str:
    if value is None:
        return ""
    if value < 1:
        return "< 1 km"
    return str(format_decimal(round(value), format="#,##0")) + " km" if value >= 10 \
        else str(format_decimal(value, format="0.#")) + " km"


@bp.app_template_filter("zip_km")
def zip_km(values: Any) -> list[tuple[str, str]]:
    """Radius choices as (value, "50 km")."""
    return [(str(v), f"{v} km") for v in values]


@bp.app_template_filter("groupby_first")
def groupby_first(items: Any, attribute: str) -> list[tuple[Any, list[Any]]]:
    """Group items by an attribute path, groups in the order of their first item (Jinja's groupby sorts)."""
    groups: dict[Any, list[Any]] = {}
    for item in items:
        key = item
        for part in attribute.split("."):
            key = getattr(key, part)
        groups.setdefault(key, []).append(item)
    return list(groups.items())
