"""My listings: declare, edit, pause, close; code suggestions; bulk import; one listing's page."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, not_, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from ..extensions import db, db_session
from ..models import ImportJob, Kind, Listing, ListingStatus, LowCode, Match, MatchStatus, MaterialFamily
from ..services import import_jobs, imports, queries, verification, visibility
from ..services import listings as listing_service
from ..services.errors import ValidationError
from . import bp
from .common import audience, firm_required, form_values, my_firm, user

FIELDS = ("kind", "title", "description", "low_code", "material_family", "quantity", "unit", "frequency",
          "radius_km", "site_id", "price_eur_per_unit", "available_from", "available_until", "reference")
FLAGS = ("hazardous", "accepts_hazardous", "anonymous")
STATUS_ACTIONS = {"publish": ListingStatus.published, "pause": ListingStatus.paused, "close": ListingStatus.closed}


def families() -> list[tuple[str, str]]:
    lang = str(get_locale() or "fr")
    rows = db.session.scalars(select(MaterialFamily))
    return sorted(((f.slug, f.label_fr if lang == "fr" else f.label_en) for f in rows), key=lambda o: o[1].lower())


def low_entry(code: str | None) -> LowCode | None:
    return db.session.get(LowCode, code) if code else None


def _form_data() -> dict[str, Any]:
    data: dict[str, Any] = {f: request.form.get(f, "") for f in FIELDS}
    for flag in FLAGS:
        data[flag] = request.form.get(flag) == "on"
    if data["kind"] == Kind.offer.value:
        data.pop("radius_km")  # a search radius belongs to needs
        data["accepts_hazardous"] = False
    if not data.get("reference"):
        data.pop("reference")
    return data


def _values(listing: Listing) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(listing, name, None)
        if value is None:
            values[name] = ""
        elif hasattr(value, "value"):
            values[name] = value.value
        elif isinstance(value, float):
            values[name] = f"{value:g}"
        else:
            values[name] = str(value)
    for flag in FLAGS:
        values[flag] = "on" if getattr(listing, flag) else ""
    return values


def _form(template_values: dict[str, Any], errors: dict[str, Any], listing: Listing | None,
          status: int = 200) -> tuple[str, int]:
    return render_template(
        "listings/form.html", values=template_values, errors=errors, listing=listing, firm=my_firm(),
        families=families(), low=low_entry(template_values.get("low_code")),
    ), status


@bp.get("/listings")
@firm_required
def my_listings() -> str:
    firm = my_firm()
    listings = db.session.scalars(
        select(Listing).where(Listing.firm_id == firm.id).order_by(Listing.updated_at.desc(), Listing.id.desc())
    ).all()
    ids = [listing.id for listing in listings]
    counts: dict[int, int] = {}
    if ids:
        for column in (Match.offer_id, Match.need_id):
            rows = db.session.execute(
                select(column, func.count()).where(column.in_(ids), Match.status != MatchStatus.stale,
                                                   Match.status != MatchStatus.declined,
                                                   not_(queries.weak_lead())).group_by(column)
            )
            for listing_id, n in rows:
                counts[listing_id] = counts.get(listing_id, 0) + n
    groups = {
        "published": [x for x in listings if x.status is ListingStatus.published],
        "paused": [x for x in listings if x.status in (ListingStatus.paused, ListingStatus.draft)],
        "closed": [x for x in listings if x.status in (ListingStatus.closed, ListingStatus.expired)],
    }
    return render_template("listings/mine.html", groups=groups, counts=counts, total=len(listings))


@bp.route("/listings/new", methods=["GET", "POST"])
@firm_required
def listing_new() -> Any:
    firm = my_firm()
    if request.method == "GET":
        kind = request.args.get("kind") if request.args.get("kind") in ("offer", "need") else ""
        values = {"kind": kind, "title": (request.args.get("title") or "")[:200], "unit": "t",
                  "frequency": "monthly", "site_id": str(firm.main_site.id) if firm.main_site else ""}
        return _form(values, {}, None)
    values = form_values()
    publish = request.form.get("action") != "draft"
    try:
        listing = listing_service.create_listing(db_session(), firm, _form_data(), publish=publish, by=user())
    except ValidationError as exc:
        db.session.rollback()
        return _form(values, exc.errors, None, 422)
    except verification.Unconfirmed as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _form(values, {}, None, 403)
    db.session.commit()
    if publish:
        flash(_l("Your listing is published. Matching firms will appear in your matches within a few minutes."),
              "success")
    if listing.anonymous:
        flash(_l("Your listing is anonymous: other firms see it at “%(place)s”.",
                 place=audience().public_place(listing).commune), "success")
    else:
        flash(_l("Your listing is saved as a draft; publish it when it is ready."), "success")
    return redirect(url_for("web.listing_detail", listing_id=listing.public_id))


@bp.route("/listings/<public_id:listing_id>/edit", methods=["GET", "POST"])
@firm_required
def listing_edit(listing_id: str) -> Any:
    listing = visibility.own_listing(db_session(), user(), listing_id)
    if request.method == "GET":
        return _form(_values(listing), {}, listing)
    values = form_values()
    try:
        listing_service.update_listing(db_session(), listing, _form_data(), by=user())
    except ValidationError as exc:
        db.session.rollback()
        return _form(values, exc.errors, listing, 422)
    except verification.Unconfirmed as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _form(values, {}, listing, 403)
    db.session.commit()
    flash(_l("Your listing is saved."), "success")
    return redirect(url_for("web.listing_detail", listing_id=listing.public_id))


@bp.post("/listings/<public_id:listing_id>/status")
@firm_required
def listing_status(listing_id: str) -> Response:
    listing = visibility.own_listing(db_session(), user(), listing_id)
    status = STATUS_ACTIONS.get(request.form.get("action", ""))
    if status is None:
        abort(400)
    try:
        listing_service.set_status(db_session(), listing, status, by=user())
    except verification.Unconfirmed as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("web.listing_detail", listing_id=listing.public_id))
    db.session.commit()
    messages = {
        ListingStatus.published: _l("Your listing is published."),
        ListingStatus.paused: _l("Your listing is paused: nobody sees it until you publish it again."),
        ListingStatus.closed: _l("Your listing is closed."),
    }
    flash(messages[status], "success")
    if request.form.get("next") == "list":
        return redirect(url_for("web.my_listings"))
    return redirect(url_for("web.listing_detail", listing_id=listing.public_id))


@bp.get("/listings/<public_id:listing_id>")
@firm_required
def listing_detail(listing_id: str) -> str:
    listing = visibility.visible_listing(db_session(), user(), listing_id)
    seen = audience()
    view = seen.view(listing)
    firm = my_firm()
    # This listing's matches with mine: the way to act on it.
    column, other = (Match.need_id, Match.offer_id) if listing.kind is Kind.need else (Match.offer_id, Match.need_id)
    query = select(Match).where(column == listing.id, Match.status != MatchStatus.stale, not_(queries.weak_lead()))
    if not view.mine:  # another firm's listing: only its matches with mine
        query = query.where(other.in_(select(Listing.id).where(Listing.firm_id == firm.id)))
    query = query.options(selectinload(Match.offer), selectinload(Match.need)).order_by(
        *queries.mixed_order(Match, Match.score.desc()))
    matches = db.session.scalars(query).all()
    return render_template("listings/detail.html", listing=listing, view=view, matches=matches,
                           low=low_entry(listing.low_code), family=listing.family)


@bp.get("/listings/suggest")
@firm_required
def listing_suggest() -> Response:
    """Codes and family for the title being typed; with `code`, that code's label and hazard."""
    text = (request.args.get("q") or "")[:500]
    result: dict[str, Any] = {"suggestions": [], "material_family": None}
    if len(text.strip()) >= 3:
        result = classify(text)
    lang = str(get_locale() or "fr")
    for entry in result["suggestions"]:
        entry["label"] = entry["label_fr"] if lang == "fr" else entry["label_en"]
    family = db.session.get(MaterialFamily, result["material_family"]) if result["material_family"] else None
    result["material_family_label"] = (family.label_fr if lang == "fr" else family.label_en) if family else None
    code = request.args.get("code")
    if code:
        from ..matching.nomenclature import normalise_low_code

        low = low_entry(normalise_low_code(code[:20]))
        result["code"] = None if low is None or low.level != "entry" else {
            "code": low.code, "label": low.label_fr if lang == "fr" else low.label_en, "hazardous": low.hazardous,
            "material_family": low.family_slug,
        }
    return jsonify(result)


def classify(text: str) -> dict[str, Any]:
    try:
        from ..services.matching import classify as engine_classify
    except ImportError:  # the engine's service is optional for this endpoint: fall back on the taxonomy
        from ..matching import nomenclature, taxonomy

        suggestion = taxonomy.suggest_codes(text, k=5)
        entries = nomenclature.low_by_code()
        return {"suggestions": [{"code": c, "label_fr": entries[c].label_fr, "label_en": entries[c].label_en,
                                 "hazardous": entries[c].hazardous, "score": s}
                                for c, s in suggestion.codes if c in entries],
                "material_family": suggestion.family}
    return engine_classify(text, k=5)


# --- bulk import ---------------------------------------------------------------------------------


@bp.route("/listings/import", methods=["GET", "POST"])
@firm_required
def listing_import() -> Any:
    if request.method == "GET":
        return render_template("listings/import.html", report=None, values={}, errors={})
    upload = request.files.get("file")
    values = {"mode": request.form.get("mode", "all")}
    if upload is None or not upload.filename:
        return render_template("listings/import.html", report=None, values=values,
                               errors={"file": _l("Choose a CSV or XLSX file.")}), 422
    limits = import_jobs.limits_from(current_app.config)
    content = upload.stream.read(limits.max_bytes + 1)
    outcome = import_jobs.start(db_session(), my_firm(), user(), upload.filename, content,
                                valid_only=values["mode"] == "valid", locale=str(get_locale() or "fr"), limits=limits)
    if isinstance(outcome, ImportJob):
        # Read by a worker: the request ends now and the page follows the job.
        db.session.commit()
        return redirect(url_for("web.listing_import_job", job_id=outcome.id), 303)
    report = outcome
    if report.written and not verification.is_confirmed(user()):
        flash(_l("Your listings are kept as drafts: confirm your e-mail address, then publish them."), "info")
    if report.written:
        db.session.commit()
    else:
        db.session.rollback()
    status = 200 if report.ok or report.written else 422
    return render_template("listings/import.html", report=report, values=values, errors={}), status


@bp.get("/listings/import/<int:job_id>")
@firm_required
def listing_import_job(job_id: int) -> Any:
    """A large import's page: its stage while a worker reads the file, then its report."""
    job = db.session.get(ImportJob, job_id)
    if job is None or job.firm_id != my_firm().id:
        abort(404)
    report = import_jobs.StoredReport.load(job.report) if job.report is not None else None
    return render_template("listings/import.html", report=report, job=job, values={"mode": "valid" if
                           job.valid_only else "all"}, errors={})


@bp.get("/listings/import/template.<fmt>")
@firm_required
def listing_import_template(fmt: str) -> Response:
    lang = str(get_locale() or "fr")
    name = "modele-annonces" if lang == "fr" else "listings-template"
    if fmt == "csv":
        body, mimetype = imports.template_csv(lang), "text/csv; charset=utf-8"
    elif fmt == "xlsx":
        body, mimetype = imports.template_xlsx(lang), \
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        abort(404)
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response
