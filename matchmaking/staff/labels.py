"""Numbers and names as readers of the statistics see them, in their language."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_babel import format_date, format_decimal, format_percent, get_locale
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from sqlalchemy import select

from ..extensions import db
from ..models import Commune, MaterialFamily
from ..services import stats
from ..services.stats import Figure

HIDDEN_MARK = {"primary": "s", "dominance": "s", "secondary": "s*"}
HIDDEN_TEXT = {
    "primary": _l("Not shown: fewer than 3 firms"),
    "dominance": _l("Statistical confidentiality: one or two firms make most of this figure"),
    "secondary": _l("Not shown: it would let a hidden figure be worked out"),
    "na": _l("Not applicable"),
}
LEVEL_LABELS = {
    "found": _l("Matches found"),
    "interest": _l("Interest shown"),
    "accepted": _l("Accepted by both firms"),
    "exchanged": _l("First exchange made"),
    "recurring": _l("Recurring exchange"),
}
STATUS_LABELS = {
    "proposed": _l("New"),
    "interested": _l("In discussion"),
    "accepted": _l("Accepted by both"),
    "declined": _l("Declined"),
    "stale": _l("Out of date"),
}
ROUTE_LABELS = {"landfill": _l("landfill"), "composting": _l("composting")}


def locale() -> str:
    return str(get_locale() or "fr")


def tonnes(value: float) -> str:
    pattern = "#,##0" if abs(value) >= 100 else "#,##0.#" if abs(value) >= 10 else "#,##0.##"
    return str(format_decimal(value, format=pattern))


def integer(value: float) -> str:
    return str(format_decimal(round(value), format="#,##0"))


def euros(value: float) -> str:
    return str(format_decimal(round(value, -2) if value >= 10_000 else round(value), format="#,##0")) + " €"


def percent(value: float | None) -> str:
    return "" if value is None else str(format_percent(value, format="#,##0 %"))


def km(value: float) -> str:
    return str(format_decimal(value, format="#,##0.#")) + " km"


def factor(value: float) -> str:
    return str(format_decimal(value, format="#,##0.###"))


def show(figure: Figure | None, fmt: Any = tonnes) -> Markup:
    """A table cell: the value, a dash for nothing, or the secrecy mark with its reason."""
    if figure is None:
        return Markup("")
    if figure.value is not None and figure.status == "shown":
        return Markup(escape(fmt(figure.value)))
    if figure.status == "empty":
        return Markup('<span class="nil">–</span>')
    mark = HIDDEN_MARK.get(figure.status, "—")
    text = HIDDEN_TEXT.get(figure.status, "")
    return Markup(f'<abbr class="secret" title="{escape(str(text))}">{escape(mark)}</abbr>'
                  f'<span class="visually-hidden"> {escape(str(text))}</span>')


def plain(figure: Figure | None, fmt: Callable[[float], str] = tonnes) -> str:
    """The same for text outputs (CSV, spreadsheet notes)."""
    if figure is None:
        return ""
    if figure.value is not None and figure.status == "shown":
        return fmt(figure.value)
    if figure.status == "empty":
        return "–"
    return HIDDEN_MARK.get(figure.status, "—")


class Names:
    """Labels of families, EWC-Stat categories, communes and NAF sections, read once per request."""

    def __init__(self) -> None:
        lang = locale()
        self.families: dict[str, str] = {}
        self.categories: dict[str, str] = {}
        for slug, fr, en, code, category in db.session.execute(
            select(MaterialFamily.slug, MaterialFamily.label_fr, MaterialFamily.label_en,
                   MaterialFamily.ewc_stat_code, MaterialFamily.ewc_stat_label_en)
        ):
            self.families[slug] = fr if lang == "fr" else en
            self.categories[code] = f"{code} {category}"
        self.families[stats.UNKNOWN] = str(_l("Family not given"))
        self.categories[stats.UNKNOWN] = str(_l("Family not given"))
        self.communes: dict[str, tuple[str, float, float]] = {
            insee: (name, lat, lon)
            for insee, name, lat, lon in db.session.execute(
                select(Commune.insee, Commune.name, Commune.lat, Commune.lon).where(Commune.ccma.is_(True))
                .order_by(Commune.name)
            )
        }
        self.lang = lang

    def family(self, slug: str) -> str:
        return self.families.get(slug, slug)

    def category(self, code: str) -> str:
        return self.categories.get(code, code)

    def commune(self, insee: str) -> str:
        if insee == stats.OUTSIDE:
            return str(_l("Outside the CCMA"))
        return self.communes.get(insee, (insee, 0.0, 0.0))[0]

    def section(self, letter: str) -> str:
        fr, en = stats.SECTION_LABELS.get(letter, (letter, letter))
        return f"{letter} – {fr if self.lang == 'fr' else en}"

    def month(self, label: str, short: bool = False) -> str:
        year, month = (int(x) for x in label.split("-"))
        from datetime import date

        return str(format_date(date(year, month, 1), "MMM yy" if short else "MMMM yyyy"))
