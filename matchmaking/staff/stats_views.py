"""The statistics page, its printable report and its CSV and spreadsheet exports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, render_template, request
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from ..extensions import db, db_session
from ..services import audit, learning, stats
from ..services.errors import ValidationError
from . import bp, charts, exports
from . import labels as lb
from .access import STATISTICS, roles_required, staff_user


def today() -> Any:
    return datetime.now(UTC).date()


def view_args() -> tuple[stats.Period, stats.Filters, dict[str, Any], dict[str, str]]:
    """The period and filters asked for; what is wrong falls back to the defaults, with a message."""
    args = request.args
    values = {k: args.get(k, "") for k in ("from", "to", "family", "commune", "section")}
    errors: dict[str, Any] = {}
    try:
        period = stats.parse_period(values["from"], values["to"], today())
    except ValidationError as exc:
        errors.update(exc.errors)
        period = stats.default_period(today())
    try:
        filters = stats.parse_filters(db_session(), values["family"], values["commune"], values["section"])
    except ValidationError as exc:
        errors.update(exc.errors)
        filters = stats.Filters()
    return period, filters, errors, values


def _charts(d: stats.Dashboard, names: lb.Names) -> dict[str, Markup]:
    hidden = {"primary": str(_l("fewer than 3 firms")), "dominance": str(_l("statistical confidentiality")),
              "secondary": str(_l("hidden to protect another figure"))}
    top = [r for r in d.families if r["exchanged"].status != "empty"][:10]
    family_bars = charts.bars(
        [charts.Bar(names.family(r.key), r["exchanged"], hidden.get(r["exchanged"].status, "")) for r in top],
        lambda v: lb.tonnes(v) + " t", str(_l("Tonnes exchanged by material family")), pattern_id="h-fam")
    co2_rows = stats.sort_rows([r for r in d.families if (r["co2"].value or 0) > 0
                            or r["co2"].withheld], "co2")[:10]
    co2_bars = charts.bars(
        [charts.Bar(names.family(r.key), r["co2"], hidden.get(r["co2"].status, "")) for r in co2_rows],
        lambda v: lb.tonnes(v) + " t", str(_l("CO2e avoided by material family (t CO2e)")), color=charts.BLUE,
        pattern_id="h-co2")
    section_rows = [r for r in d.sections if r["exchanged"].status != "empty"][:10]
    section_bars = charts.bars(
        [charts.Bar(names.section(r.key), r["exchanged"], hidden.get(r["exchanged"].status, ""))
         for r in section_rows],
        lambda v: lb.tonnes(v) + " t", str(_l("Tonnes exchanged by NAF section of the firm giving")),
        color=charts.BLUE, pattern_id="h-sec", label_width=270)
    steps = [charts.Step(str(lb.LEVEL_LABELS[s.key]), s.figure, s.rate,
                         hidden.get(s.rate.status, "") if s.rate is not None else "")
             for s in d.funnel]
    funnel = charts.funnel(steps, lb.integer, lambda v: lb.percent(v) + " " + str(_l("of the previous step")),
                           str(_l("From match to recurring exchange")))
    line = charts.line(
        [charts.Point(r.key, names.month(r.key, short=True), r["exchanged"]) for r in d.months],
        lambda v: lb.tonnes(v), str(_l("Tonnes exchanged month by month")))
    places = [
        charts.Place(names.commune(r.key), *names.communes[r.key][1:], r["exchanged"])
        for r in d.communes if r.key in names.communes
    ]
    commune_map = charts.commune_map(places, lambda v: lb.tonnes(v) + " t",
                                     str(_l("Tonnes exchanged by commune of the firm giving")),
                                     str(_l("circle area ∝ tonnes")), str(_l("hidden")))
    return {"families": family_bars, "co2": co2_bars, "sections": section_bars, "funnel": funnel, "line": line,
            "map": commune_map}


def _options(names: lb.Names, d: stats.Dashboard) -> dict[str, list[tuple[str, str]]]:
    families = sorted(((slug, label) for slug, label in names.families.items() if slug != stats.UNKNOWN),
                      key=lambda kv: kv[1].lower())
    communes = [(insee, name) for insee, (name, _, _) in names.communes.items()]
    communes.append((stats.OUTSIDE, names.commune(stats.OUTSIDE)))
    sections = [(letter, names.section(letter)) for letter in stats.SECTION_LABELS if letter != stats.UNKNOWN]
    return {"family": families, "commune": communes, "section": sections}


@bp.get("/stats")
@roles_required(STATISTICS)
def statistics() -> str:
    period, filters, errors, values = view_args()
    d = stats.dashboard(db_session(), period, filters, today())
    names = lb.Names()
    if not values["from"] and not values["to"]:
        values["from"], values["to"] = stats.month_label(period.first), stats.month_label(period.last)
    return render_template(
        "staff/stats.html", d=d, names=names, charts=_charts(d, names), options=_options(names, d), errors=errors,
        values=values, lb=lb, printing=request.args.get("print") == "1", stats=stats,
        export_args=_export_args(period, filters), generated=datetime.now(UTC), model=learning.model_card(),
    )


def _export_args(period: stats.Period, filters: stats.Filters) -> dict[str, str]:
    return {"from": stats.month_label(period.first), "to": stats.month_label(period.last), **filters.as_args()}


def _audit_export(period: stats.Period, filters: stats.Filters, fmt: str) -> None:
    """An export leaves the workspace: who took which figures is kept."""
    audit.record(db_session(), staff_user(), audit.STATS_EXPORTED, format=fmt, **_export_args(period, filters))
    db.session.commit()


def _filename(period: stats.Period, ext: str) -> str:
    return f"statistiques-ccma-{stats.month_label(period.first)}-{stats.month_label(period.last)}.{ext}"


@bp.get("/stats/export.csv")
@roles_required(STATISTICS)
def export_csv() -> Response:
    period, filters, _errors, _values = view_args()
    d = stats.dashboard(db_session(), period, filters, today())
    body = exports.csv_text(d, lb.Names())
    _audit_export(period, filters, "csv")
    return Response(body.encode("utf-8-sig"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{_filename(period, "csv")}"'})


@bp.get("/stats/export.xlsx")
@roles_required(STATISTICS)
def export_xlsx() -> Response:
    period, filters, _errors, _values = view_args()
    d = stats.dashboard(db_session(), period, filters, today())
    body = exports.xlsx_bytes(d, lb.Names())
    _audit_export(period, filters, "xlsx")
    return Response(body, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{_filename(period, "xlsx")}"'})
