"""Statistics for CCMA staff (analysts, facilitators, administrators): the same figures as the
statistics page, with the same disclosure control. A withheld figure is `{"value": null,
"reason": ...}`: `fewer_than_3_firms`, `dominated_by_one_or_two_firms` (tonnes of which one firm makes
more than 85 % or two firms more than 90 %), `protects_another_figure` (it would let a withheld figure
be worked out by subtraction) or `not_applicable`. Periods are whole months: `from` and `to` may be
YYYY-MM-DD or YYYY-MM; the default is the last 12 months."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, jsonify, request
from marshmallow import Schema, fields
from sqlalchemy import select

from ..extensions import db, db_session
from ..models import MaterialFamily, Role
from ..services import audit, stats
from ..services.stats import Figure
from . import bp
from .openapi import operation
from .parsing import query_args
from .security import current_user, require_roles

STAFF = (Role.analyst, Role.facilitator, Role.admin)
REASONS = stats.REASONS


# --- schemas ---------------------------------------------------------------------------------------


class StatsQuerySchema(Schema):
    from_ = fields.String(data_key="from", metadata={"description": "First month: YYYY-MM-DD or YYYY-MM."})
    to = fields.String(metadata={"description": "Last month: YYYY-MM-DD or YYYY-MM."})
    family = fields.String(metadata={"description": "Only this material family (slug)."})
    commune = fields.String(metadata={"description": "Only this CCMA commune (INSEE code), or `outside`."})
    section = fields.String(metadata={"description": "Only this NAF section (letter)."})


class FigureSchema(Schema):
    value = fields.Float(required=True, allow_none=True)
    reason = fields.String(required=True, allow_none=True, metadata={
        "enum": [None, *stats.REASONS.values()],
        "description": "Why the value is withheld (null when it is shown)."})


class PeriodSchema(Schema):
    from_ = fields.Date(data_key="from", required=True)
    to = fields.Date(required=True)


class FiltersSchema(Schema):
    family = fields.String(required=True, allow_none=True)
    commune = fields.String(required=True, allow_none=True)
    section = fields.String(required=True, allow_none=True)


class _Head(Schema):
    period = fields.Nested(PeriodSchema, required=True)
    filters = fields.Nested(FiltersSchema, required=True)


class ListingsSchema(Schema):
    total = fields.Nested(FigureSchema, required=True)
    offer = fields.Nested(FigureSchema, required=True)
    need = fields.Nested(FigureSchema, required=True)


class MatchesSchema(Schema):
    found = fields.Nested(FigureSchema, required=True)
    by_status = fields.Dict(keys=fields.String(), values=fields.Nested(FigureSchema), required=True)


class StageSchema(Schema):
    stage = fields.String(required=True, metadata={"enum": list(stats.LEVELS)})
    count = fields.Nested(FigureSchema, required=True)
    rate = fields.Nested(FigureSchema, allow_none=True, required=True,
                         metadata={"description": "Share of the previous stage (null for the first)."})


class FamilyRowSchema(Schema):
    family = fields.String(required=True)
    label = fields.String(required=True)
    ewc_stat = fields.String(required=True)
    tonnes_offered = fields.Nested(FigureSchema, required=True)
    tonnes_matched = fields.Nested(FigureSchema, required=True)
    tonnes_exchanged = fields.Nested(FigureSchema, required=True)
    tonnes_exchanged_attributable = fields.Nested(FigureSchema, required=True)
    co2e_avoided_t = fields.Nested(FigureSchema, required=True)
    co2e_avoided_attributable_t = fields.Nested(FigureSchema, required=True)
    landfill_avoided_t = fields.Nested(FigureSchema, required=True)
    disposal_costs_avoided_eur = fields.Nested(FigureSchema, required=True)


class FactorSchema(Schema):
    family = fields.String(required=True)
    route = fields.String(required=True)
    disposal_kgco2e_per_t = fields.Float(required=True)
    virgin_kgco2e_per_t = fields.Float(required=True, allow_none=True)
    secondary_kgco2e_per_t = fields.Float(required=True, allow_none=True)
    counted_kgco2e_per_t = fields.Float(required=True)
    sources = fields.List(fields.String(), required=True)


class MethodSchema(Schema):
    formula = fields.String(required=True)
    factors = fields.List(fields.Nested(FactorSchema), required=True)
    transport_kgco2e_per_tkm = fields.Float(required=True)
    transport_source = fields.String(required=True)
    road_factor = fields.Float(required=True)
    landfill_cost_eur_per_t = fields.Float(required=True, metadata={"description": "Gate fee + TGAP of cost_year."})
    composting_cost_eur_per_t = fields.Float(required=True)
    cost_year = fields.Integer(required=True)
    cost_sources = fields.List(fields.String(), required=True)
    not_counted = fields.String(required=True)
    attributable_rule = fields.String(required=True)
    disclosure_rule = fields.String(required=True)


class Co2Schema(Schema):
    total_t = fields.Nested(FigureSchema, required=True)
    attributable_t = fields.Nested(FigureSchema, required=True)
    disposal_t = fields.Nested(FigureSchema, required=True)
    substitution_t = fields.Nested(FigureSchema, required=True)
    transport_t = fields.Nested(FigureSchema, required=True)
    families_left_out = fields.Integer(required=True, metadata={
        "description": "Families whose exchanged tonnes are withheld: their CO2e is not in these totals."})
    method = fields.Nested(MethodSchema, required=True)


class SummarySchema(_Head):
    firms = fields.Nested(FigureSchema, required=True, metadata={"description": "Firms registered by the end."})
    listings = fields.Nested(ListingsSchema, required=True)
    matches = fields.Nested(MatchesSchema, required=True)
    exchanges = fields.Nested(FigureSchema, required=True)
    tonnes_offered = fields.Nested(FigureSchema, required=True)
    tonnes_matched = fields.Nested(FigureSchema, required=True)
    tonnes_exchanged = fields.Nested(FigureSchema, required=True)
    tonnes_exchanged_attributable = fields.Nested(FigureSchema, required=True)
    tonnes_by_family = fields.List(fields.Nested(FamilyRowSchema), required=True)
    co2e_avoided = fields.Nested(Co2Schema, required=True)
    landfill_avoided_t = fields.Nested(FigureSchema, required=True)
    disposal_costs_avoided_eur = fields.Nested(FigureSchema, required=True)
    distance_km = fields.Nested(FigureSchema, required=True)
    funnel = fields.List(fields.Nested(StageSchema), required=True)


class FamiliesSchema(_Head):
    rows = fields.List(fields.Nested(FamilyRowSchema), required=True)


class CommuneRowSchema(Schema):
    commune = fields.String(required=True, metadata={"description": "INSEE code, or `outside`."})
    name = fields.String(required=True)
    lat = fields.Float(required=True, allow_none=True)
    lon = fields.Float(required=True, allow_none=True)
    firms = fields.Nested(FigureSchema, required=True)
    listings = fields.Nested(FigureSchema, required=True)
    tonnes_offered = fields.Nested(FigureSchema, required=True)
    exchanges = fields.Nested(FigureSchema, required=True)
    tonnes_exchanged = fields.Nested(FigureSchema, required=True)


class CommunesSchema(_Head):
    rows = fields.List(fields.Nested(CommuneRowSchema), required=True)


class SectionRowSchema(Schema):
    section = fields.String(required=True)
    label = fields.String(required=True)
    firms = fields.Nested(FigureSchema, required=True)
    listings = fields.Nested(FigureSchema, required=True)
    tonnes_offered = fields.Nested(FigureSchema, required=True)
    tonnes_exchanged = fields.Nested(FigureSchema, required=True)


class SectionsSchema(_Head):
    rows = fields.List(fields.Nested(SectionRowSchema), required=True)


class CategoryRowSchema(Schema):
    ewc_stat = fields.String(required=True)
    tonnes_offered = fields.Nested(FigureSchema, required=True)
    tonnes_matched = fields.Nested(FigureSchema, required=True)
    tonnes_exchanged = fields.Nested(FigureSchema, required=True)


class CategoriesSchema(_Head):
    rows = fields.List(fields.Nested(CategoryRowSchema), required=True)


class MonthRowSchema(Schema):
    month = fields.String(required=True, metadata={"example": "2026-03"})
    listings = fields.Nested(FigureSchema, required=True)
    matches = fields.Nested(FigureSchema, required=True)
    exchanges = fields.Nested(FigureSchema, required=True)
    tonnes_exchanged = fields.Nested(FigureSchema, required=True)


class MonthsSchema(_Head):
    rows = fields.List(fields.Nested(MonthRowSchema), required=True)


# --- answers ---------------------------------------------------------------------------------------


def figure(f: Figure | None) -> dict[str, Any] | None:
    if f is None:
        return None
    if f.status in ("shown", "empty"):
        return {"value": round(f.value or 0.0, 6), "reason": None}
    return {"value": None, "reason": REASONS.get(f.status, "fewer_than_3_firms")}


def _dashboard() -> stats.Dashboard:
    args = query_args(StatsQuerySchema)
    today = datetime.now(UTC).date()
    period = stats.parse_period(args.get("from_"), args.get("to"), today)
    filters = stats.parse_filters(db_session(), args.get("family"), args.get("commune"), args.get("section"))
    dashboard = stats.dashboard(db_session(), period, filters, today)
    # Figures leaving through the API are an export like the workspace's files: who took which is kept.
    audit.record(db_session(), current_user(), audit.STATS_EXPORTED, format="json", endpoint=request.endpoint,
                 **{"from": stats.month_label(period.first), "to": stats.month_label(period.last)},
                 **filters.as_args())
    db.session.commit()
    return dashboard


def _head(d: stats.Dashboard) -> dict[str, Any]:
    return {
        "period": {"from": d.period.start.isoformat(), "to": d.period.end.isoformat()},
        "filters": {"family": d.filters.family, "commune": d.filters.commune, "section": d.filters.section},
    }


def _family_rows(d: stats.Dashboard) -> list[dict[str, Any]]:
    labels = {slug: (fr, code) for slug, fr, code in db.session.execute(
        select(MaterialFamily.slug, MaterialFamily.label_fr, MaterialFamily.ewc_stat_code))}
    rows = []
    for r in d.families:
        label, code = labels.get(r.key, (r.key, stats.UNKNOWN))
        rows.append({
            "family": r.key, "label": label, "ewc_stat": code,
            "tonnes_offered": figure(r["offered"]), "tonnes_matched": figure(r["matched"]),
            "tonnes_exchanged": figure(r["exchanged"]),
            "tonnes_exchanged_attributable": figure(r["attributable"]),
            "co2e_avoided_t": figure(r["co2"]), "co2e_avoided_attributable_t": figure(r["co2_attributable"]),
            "landfill_avoided_t": figure(r["landfill"]), "disposal_costs_avoided_eur": figure(r["cost"]),
        })
    return rows


def _share(value: float) -> str:
    return f"{value * 100:g} %"


def _method(d: stats.Dashboard) -> dict[str, Any]:
    m = d.method
    return {
        "formula": ("t × disposal + t × max(0, virgin − secondary) − t × road_factor × distance_km × transport; "
                    "kgCO2e, summed over exchanges, reported in tonnes CO2e"),
        "factors": [
            {"family": slug, "route": ff.route, "disposal_kgco2e_per_t": ff.disposal.value,
             "virgin_kgco2e_per_t": ff.virgin.value if ff.virgin else None,
             "secondary_kgco2e_per_t": ff.secondary.value if ff.secondary else None,
             "counted_kgco2e_per_t": ff.per_tonne,
             "sources": [f.source for f in (ff.disposal, ff.virgin, ff.secondary) if f]}
            for slug, ff in sorted(m.families.items())
        ],
        "transport_kgco2e_per_tkm": m.transport.value,
        "transport_source": m.transport.source,
        "road_factor": m.road_factor,
        "landfill_cost_eur_per_t": m.landfill_cost(d.cost_year),
        "composting_cost_eur_per_t": m.composting_cost,
        "cost_year": d.cost_year,
        "cost_sources": [" ".join(m.landfill_fee_source), " ".join(m.tgap[min(max(d.cost_year, min(m.tgap)),
                                                                                 max(m.tgap))][1:]),
                         " ".join(m.composting_source)],
        "not_counted": "Families without factors count their tonnes but no CO2e: rubber other than tyres, "
                       "animal by-products, manure and digestate, edible oils and fats, mineral oils, solvents, "
                       "chemicals, sludges, WEEE, batteries and any family absent from `factors`.",
        "attributable_rule": "An exchange is attributable to the service when it was made on or after the day the "
                             "service found its match and the two firms had recorded no exchange of that material "
                             "family before that day.",
        "disclosure_rule": "A figure built from fewer than 3 distinct firms is withheld, and so are tonnes of which "
                           "the largest firm makes more than "
                           f"{_share(d.dominance.one)} or the two largest more than "
                           f"{_share(d.dominance.two)} (dominance rule; a firm's part is the tonnes "
                           "of the records it takes part in), and any figure that would let a withheld one be "
                           "worked out by subtraction from figures shown for any period and filters. CO2e, "
                           "landfill and cost totals add up the families shown.",
    }


@bp.get("/stats/summary")
@operation("Key figures of the circular economy for a period (staff)", tags=["statistics"],
           query=StatsQuerySchema, errors=[403], responses={200: ("The figures.", SummarySchema)},
           description=__doc__)
@require_roles(*STAFF)
def stats_summary() -> Response:
    d = _dashboard()
    k = d.kpis
    body = _head(d) | {
        "firms": figure(k["firms"]),
        "listings": {"total": figure(k["listings"]), "offer": figure(k["offers"]), "need": figure(k["needs"])},
        "matches": {"found": figure(k["matches"]),
                    "by_status": {status: figure(f) for status, f in d.statuses.items()}},
        "exchanges": figure(k["exchanges"]),
        "tonnes_offered": figure(k["offered"]),
        "tonnes_matched": figure(k["matched"]),
        "tonnes_exchanged": figure(k["exchanged"]),
        "tonnes_exchanged_attributable": figure(k["attributable"]),
        "tonnes_by_family": _family_rows(d),
        "co2e_avoided": {
            "total_t": figure(k["co2"]), "attributable_t": figure(k["co2_attributable"]),
            "disposal_t": figure(k["co2_disposal"]), "substitution_t": figure(k["co2_substitution"]),
            "transport_t": figure(k["co2_transport"]), "families_left_out": d.left_out, "method": _method(d),
        },
        "landfill_avoided_t": figure(k["landfill"]),
        "disposal_costs_avoided_eur": figure(k["cost"]),
        "distance_km": figure(k["distance"]),
        "funnel": [{"stage": s.key, "count": figure(s.figure), "rate": figure(s.rate)} for s in d.funnel],
    }
    return jsonify(body)


@bp.get("/stats/by-family")
@operation("Tonnes offered, matched and exchanged, CO2e, landfill and costs by material family (staff)",
           tags=["statistics"], query=StatsQuerySchema, errors=[403],
           responses={200: ("One row per material family.", FamiliesSchema)})
@require_roles(*STAFF)
def stats_by_family() -> Response:
    d = _dashboard()
    return jsonify(_head(d) | {"rows": _family_rows(d)})


@bp.get("/stats/by-category")
@operation("Tonnes by EWC-Stat category (staff)", tags=["statistics"], query=StatsQuerySchema, errors=[403],
           responses={200: ("One row per EWC-Stat category.", CategoriesSchema)})
@require_roles(*STAFF)
def stats_by_category() -> Response:
    d = _dashboard()
    rows = [{"ewc_stat": r.key, "tonnes_offered": figure(r["offered"]), "tonnes_matched": figure(r["matched"]),
             "tonnes_exchanged": figure(r["exchanged"])} for r in d.categories]
    return jsonify(_head(d) | {"rows": rows})


@bp.get("/stats/by-commune")
@operation("Firms, listings and tonnes by commune of the CCMA (staff)", tags=["statistics"],
           query=StatsQuerySchema, errors=[403], responses={200: ("One row per commune.", CommunesSchema)})
@require_roles(*STAFF)
def stats_by_commune() -> Response:
    from ..models import Commune

    d = _dashboard()
    places = {insee: (name, lat, lon) for insee, name, lat, lon in db.session.execute(
        select(Commune.insee, Commune.name, Commune.lat, Commune.lon).where(Commune.ccma.is_(True)))}
    rows = []
    for r in d.communes:
        name, lat, lon = places.get(r.key, ("outside the CCMA", None, None))
        rows.append({"commune": r.key, "name": name, "lat": lat, "lon": lon, "firms": figure(r["firms"]),
                     "listings": figure(r["listings"]), "tonnes_offered": figure(r["offered"]),
                     "exchanges": figure(r["exchanges"]), "tonnes_exchanged": figure(r["exchanged"])})
    return jsonify(_head(d) | {"rows": rows})


@bp.get("/stats/by-section")
@operation("Firms, listings and tonnes by NAF section (staff)", tags=["statistics"], query=StatsQuerySchema,
           errors=[403], responses={200: ("One row per NAF section with data.", SectionsSchema)})
@require_roles(*STAFF)
def stats_by_section() -> Response:
    d = _dashboard()
    rows = [{"section": r.key, "label": stats.SECTION_LABELS.get(r.key, (r.key, r.key))[1],
             "firms": figure(r["firms"]), "listings": figure(r["listings"]), "tonnes_offered": figure(r["offered"]),
             "tonnes_exchanged": figure(r["exchanged"])} for r in d.sections]
    return jsonify(_head(d) | {"rows": rows})


@bp.get("/stats/monthly")
@operation("Listings, matches, exchanges and tonnes month by month (staff)", tags=["statistics"],
           query=StatsQuerySchema, errors=[403], responses={200: ("One row per month of the period.", MonthsSchema)})
@require_roles(*STAFF)
def stats_monthly() -> Response:
    d = _dashboard()
    rows = [{"month": r.key, "listings": figure(r["listings"]), "matches": figure(r["matches"]),
             "exchanges": figure(r["exchanges"]), "tonnes_exchanged": figure(r["exchanged"])} for r in d.months]
    return jsonify(_head(d) | {"rows": rows})
