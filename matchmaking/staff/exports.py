"""The statistics as CSV (one figure per line) and as a spreadsheet (one sheet per table), with the
same disclosure control as the page: a withheld figure is an empty value with its reason."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from flask_babel import lazy_gettext as _l
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from ..services import stats
from ..services.stats import Figure
from . import labels as lb

MEASURES: dict[str, tuple[Any, str]] = {
    "firms": (_l("Firms registered"), "firms"),
    "listings": (_l("Listings published"), "listings"),
    "offers": (_l("Offers published"), "listings"),
    "needs": (_l("Needs published"), "listings"),
    "offered": (_l("Tonnes offered (per year)"), "t"),
    "matches": (_l("Matches found"), "matches"),
    "matched": (_l("Tonnes matched (per year)"), "t"),
    "exchanges": (_l("Exchanges recorded"), "exchanges"),
    "exchanged": (_l("Tonnes exchanged"), "t"),
    "attributable": (_l("Tonnes exchanged thanks to the service"), "t"),
    "distance": (_l("Average distance between partners (crow-fly, weighted by tonnes)"), "km"),
    "co2": (_l("CO2e avoided, net"), "t CO2e"),
    "co2_disposal": (_l("CO2e of disposal avoided"), "t CO2e"),
    "co2_substitution": (_l("CO2e of virgin production avoided"), "t CO2e"),
    "co2_transport": (_l("CO2e of transport (subtracted)"), "t CO2e"),
    "co2_attributable": (_l("CO2e avoided thanks to the service"), "t CO2e"),
    "landfill": (_l("Tonnes kept from landfill"), "t"),
    "compost": (_l("Tonnes kept from composting"), "t"),
    "cost": (_l("Disposal costs avoided"), "EUR"),
    "count": (_l("Matches"), "matches"),
    "rate": (_l("Share of the previous step"), "ratio"),
}
REASONS = stats.REASONS
FAMILY_COLUMNS = ("offered", "matched", "exchanged", "attributable", "co2", "co2_disposal", "co2_substitution",
                  "co2_transport", "co2_attributable", "landfill", "compost", "cost")


def rows(d: stats.Dashboard, names: lb.Names) -> Iterator[tuple[str, str, str, str, Figure]]:
    """(table, key, label, measure, figure) for every figure of the dashboard."""
    for measure, figure in d.kpis.items():
        yield "summary", measure, str(MEASURES[measure][0]), measure, figure
    for stage in d.funnel:
        yield "funnel", stage.key, str(lb.LEVEL_LABELS[stage.key]), "count", stage.figure
        if stage.rate is not None:
            yield "funnel", stage.key, str(lb.LEVEL_LABELS[stage.key]), "rate", stage.rate
    for status, figure in d.statuses.items():
        yield "match_status", status, str(lb.STATUS_LABELS[status]), "count", figure
    tables = (("family", d.families, names.family), ("ewc_stat", d.categories, names.category),
              ("commune", d.communes, names.commune), ("naf_section", d.sections, names.section),
              ("month", d.months, lambda key: key))
    for table, breakdowns, label in tables:
        for row in breakdowns:
            for measure, figure in row.figures.items():
                yield table, row.key, label(row.key), measure, figure


def csv_text(d: stats.Dashboard, names: lb.Names) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period_from", "period_to", "filter_family", "filter_commune", "filter_section",
                     "table", "key", "label", "measure", "unit", "value", "status", "reason"])
    head = [d.period.start.isoformat(), d.period.end.isoformat(), d.filters.family or "",
            d.filters.commune or "", d.filters.section or ""]
    for table, key, label, measure, figure in rows(d, names):
        value = "" if figure.value is None else round(figure.value, 6)
        writer.writerow([*head, table, key, label, measure, MEASURES[measure][1], value,
                         figure.status, REASONS.get(figure.status, "")])
    return out.getvalue()


BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)
HEAD_FILL = PatternFill("solid", fgColor="E3F1E8")
SECRET = Font(color="5B6660", italic=True)


def _cell(ws: Any, row: int, col: int, figure: Figure | None, fmt: str = "#,##0.0") -> None:
    cell = ws.cell(row=row, column=col)
    if figure is None:
        return
    if figure.value is not None and figure.status == "shown":
        cell.value = figure.value
        cell.number_format = fmt
    elif figure.status == "empty":
        cell.value = 0 if fmt != "0%" else None
        cell.number_format = fmt
    else:
        cell.value = lb.HIDDEN_MARK.get(figure.status, "—")
        cell.font = SECRET
        cell.alignment = Alignment(horizontal="right")


def _header(ws: Any, row: int, titles: list[str]) -> None:
    for col, title in enumerate(titles, start=1):
        cell = ws.cell(row=row, column=col, value=title)
        cell.font = BOLD
        cell.fill = HEAD_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = ws.cell(row=row + 1, column=2)


def _widths(ws: Any, first: int = 38, rest: int = 16) -> None:
    for col in range(1, ws.max_column + 1):
        ws.column_dimensions[get_column_letter(col)].width = first if col == 1 else rest


def _legend(ws: Any, row: int) -> None:
    ws.cell(row=row, column=1, value=f"s : {lb.HIDDEN_TEXT['primary']}").font = SECRET
    ws.cell(row=row + 1, column=1, value=f"s : {lb.HIDDEN_TEXT['dominance']}").font = SECRET
    ws.cell(row=row + 2, column=1, value=f"s* : {lb.HIDDEN_TEXT['secondary']}").font = SECRET


def _table(ws: Any, start: int, names: list[str], breakdowns: list[stats.Breakdown], label: Any,
           columns: tuple[str, ...]) -> int:
    _header(ws, start, [str(_l("Name"))] + [f"{MEASURES[c][0]} ({MEASURES[c][1]})" for c in columns])
    row = start
    for row, item in enumerate(breakdowns, start=start + 1):
        ws.cell(row=row, column=1, value=label(item.key))
        for col, measure in enumerate(columns, start=2):
            fmt = "#,##0" if MEASURES[measure][1] in ("EUR", "firms", "listings", "matches", "exchanges") \
                else "#,##0.0"
            _cell(ws, row, col, item.figures.get(measure), fmt)
    _ = names
    return row


def xlsx_bytes(d: stats.Dashboard, names: lb.Names) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = str(_l("Summary"))[:31]
    ws.cell(row=1, column=1, value=str(_l("Circularity of the Mont des Avaloirs"))).font = TITLE
    ws.cell(row=2, column=1, value=str(_l("Period"))).font = BOLD
    ws.cell(row=2, column=2, value=f"{d.period.start.isoformat()} – {d.period.end.isoformat()}")
    filters = ", ".join(filter(None, [
        names.family(d.filters.family) if d.filters.family else "",
        names.commune(d.filters.commune) if d.filters.commune else "",
        names.section(d.filters.section) if d.filters.section else "",
    ])) or str(_l("none"))
    ws.cell(row=3, column=1, value=str(_l("Filters"))).font = BOLD
    ws.cell(row=3, column=2, value=filters)
    _header(ws, 5, [str(_l("Figure")), str(_l("Value")), str(_l("Unit"))])
    row = 5
    for row, (measure, figure) in enumerate(d.kpis.items(), start=6):
        ws.cell(row=row, column=1, value=str(MEASURES[measure][0]))
        _cell(ws, row, 2, figure, "#,##0" if MEASURES[measure][1] in ("EUR", "firms", "listings", "matches",
                                                                        "exchanges") else "#,##0.0")
        ws.cell(row=row, column=3, value=MEASURES[measure][1])
    if d.left_out:
        ws.cell(row=row + 1, column=1, value=str(_l(
            "CO2e, landfill and cost totals add up the families shown; %(n)s hidden families are left out.",
            n=d.left_out)))
    _legend(ws, row + 3)
    _widths(ws, 52)

    ws = wb.create_sheet(str(_l("Funnel"))[:31])
    _header(ws, 1, [str(_l("Step")), str(MEASURES["count"][0]), str(MEASURES["rate"][0])])
    for row, stage in enumerate(d.funnel, start=2):
        ws.cell(row=row, column=1, value=str(lb.LEVEL_LABELS[stage.key]))
        _cell(ws, row, 2, stage.figure, "#,##0")
        if stage.rate is not None:
            _cell(ws, row, 3, stage.rate, "0%")
    start = len(d.funnel) + 3
    _header(ws, start, [str(_l("Match status")), str(MEASURES["count"][0])])
    for row, (status, figure) in enumerate(d.statuses.items(), start=start + 1):
        ws.cell(row=row, column=1, value=str(lb.STATUS_LABELS[status]))
        _cell(ws, row, 2, figure, "#,##0")
    _legend(ws, row + 2)
    _widths(ws, 34, 22)

    sheets = (
        (_l("Material families"), d.families, names.family, FAMILY_COLUMNS),
        (_l("EWC-Stat categories"), d.categories, names.category, ("offered", "matched", "exchanged")),
        (_l("Communes"), d.communes, names.commune, ("firms", "listings", "offered", "exchanges", "exchanged")),
        (_l("NAF sections"), d.sections, names.section, ("firms", "listings", "offered", "exchanged")),
        (_l("Months"), d.months, lambda k: k, ("listings", "matches", "exchanges", "exchanged")),
    )
    for title, breakdowns, label, columns in sheets:
        ws = wb.create_sheet(str(title)[:31])
        last = _table(ws, 1, [], breakdowns, label, columns)
        _legend(ws, last + 2)
        _widths(ws)

    ws = wb.create_sheet(str(_l("Method"))[:31])
    m = d.method
    _header(ws, 1, [str(_l("Material family")), str(_l("Counterfactual route")),
                    str(_l("Disposal avoided (kgCO2e/t)")), str(_l("Virgin production (kgCO2e/t)")),
                    str(_l("Secondary production (kgCO2e/t)")), str(_l("Counted per tonne (kgCO2e/t)")),
                    str(_l("Sources"))])
    row = 1
    for row, (slug, ff) in enumerate(sorted(m.families.items(), key=lambda kv: names.family(kv[0])), start=2):
        ws.cell(row=row, column=1, value=names.family(slug))
        ws.cell(row=row, column=2, value=str(lb.ROUTE_LABELS.get(ff.route, ff.route)))
        ws.cell(row=row, column=3, value=ff.disposal.value)
        ws.cell(row=row, column=4, value=ff.virgin.value if ff.virgin else None)
        ws.cell(row=row, column=5, value=ff.secondary.value if ff.secondary else None)
        ws.cell(row=row, column=6, value=ff.per_tonne)
        ws.cell(row=row, column=7, value=" | ".join(f.source for f in (ff.disposal, ff.virgin, ff.secondary) if f))
    row += 2
    ws.cell(row=row, column=1, value=str(_l("Transport"))).font = BOLD
    ws.cell(row=row, column=3, value=m.transport.value)
    ws.cell(row=row, column=6, value="kgCO2e/t.km × " + str(m.road_factor))
    ws.cell(row=row, column=7, value=m.transport.source)
    row += 1
    ws.cell(row=row, column=1, value=str(_l("Landfill cost without TGAP (EUR/t)"))).font = BOLD
    ws.cell(row=row, column=3, value=m.landfill_fee)
    ws.cell(row=row, column=7, value=" ".join(m.landfill_fee_source))
    row += 1
    ws.cell(row=row, column=1, value=str(_l("TGAP landfill, year %(year)s (EUR/t)", year=d.cost_year))).font = BOLD
    ws.cell(row=row, column=3, value=m.tgap_for(d.cost_year))
    ws.cell(row=row, column=7, value=" ".join(m.tgap[min(max(d.cost_year, min(m.tgap)), max(m.tgap))][1:]))
    row += 1
    ws.cell(row=row, column=1, value=str(_l("Composting cost (EUR/t)"))).font = BOLD
    ws.cell(row=row, column=3, value=m.composting_cost)
    ws.cell(row=row, column=7, value=" ".join(m.composting_source))
    row += 2
    for text in (_l("An exchange counts as attributable to the service when it was made on or after the day the "
                    "service found its match and the two firms had recorded no exchange of that family before."),
                 _l("A figure built from fewer than 3 firms is never shown, nor any figure that would let it be "
                    "worked out by subtraction."),
                 _l("Statistical confidentiality also covers tonnes of which one firm makes more than %(one)s or "
                    "two firms more than %(two)s (dominance rule).", one=lb.percent(d.dominance.one),
                    two=lb.percent(d.dominance.two))):
        ws.cell(row=row, column=1, value=str(text))
        row += 1
    _widths(ws, 30, 18)
    ws.column_dimensions["G"].width = 120

    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
