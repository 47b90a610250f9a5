"""The firm's profile and its sites."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from ..extensions import db, db_session
from ..services import sites as site_service
from ..services.errors import Conflict, ValidationError
from . import bp
from .common import commune_fields, firm_required, form_values, invalid, my_firm

PROFILE_FIELDS = ("name", "naf_code", "contact_name", "contact_email", "contact_phone")
SITE_FIELDS = ("name", "address", "postal_code", "commune", "commune_insee")


@bp.get("/firm")
@firm_required
def firm_profile() -> str:
    return render_template("firm/profile.html", firm=my_firm())


@bp.route("/firm/edit", methods=["GET", "POST"])
@firm_required
def firm_edit() -> Any:
    firm = my_firm()
    if request.method == "GET":
        values = {f: getattr(firm, f) or "" for f in PROFILE_FIELDS}
        return render_template("firm/edit.html", firm=firm, values=values, errors={})
    values = form_values()
    try:
        site_service.update_firm(db_session(), firm, {f: request.form.get(f, "") for f in PROFILE_FIELDS})
    except ValidationError as exc:
        return invalid("firm/edit.html", exc, values, firm=firm)
    db.session.commit()
    flash(_l("Your firm's profile is saved."), "success")
    return redirect(url_for("web.firm_profile"))


def _site_data() -> dict[str, Any]:
    return commune_fields({f: request.form.get(f, "") for f in SITE_FIELDS})


def _site_errors(exc: ValidationError) -> ValidationError:
    if "commune_insee" in exc.errors:
        exc.errors["commune"] = exc.errors.pop("commune_insee")
    return exc


@bp.route("/firm/sites/new", methods=["GET", "POST"])
@firm_required
def site_new() -> Any:
    firm = my_firm()
    if request.method == "GET":
        return render_template("firm/site.html", firm=firm, site=None, values={}, errors={})
    values = form_values()
    try:
        site_service.add_site(db_session(), firm, _site_data())
    except ValidationError as exc:
        return invalid("firm/site.html", _site_errors(exc), values, firm=firm, site=None)
    db.session.commit()
    flash(_l("The site is added."), "success")
    return redirect(url_for("web.firm_profile"))


def _my_site(site_id: int) -> Any:
    site = site_service.firm_site(my_firm(), site_id)
    if site is None:
        abort(404)  # another firm's site is as good as missing
    return site


@bp.route("/firm/sites/<int:site_id>", methods=["GET", "POST"])
@firm_required
def site_edit(site_id: int) -> Any:
    firm, site = my_firm(), _my_site(site_id)
    if request.method == "GET":
        postal = site.commune.postal_codes.split()[0] if site.commune.postal_codes else ""
        values = {"name": site.name, "address": site.address or "", "postal_code": postal,
                  "commune": site.commune.name}
        return render_template("firm/site.html", firm=firm, site=site, values=values, errors={})
    values = form_values()
    try:
        site_service.update_site(db_session(), site, _site_data())
    except ValidationError as exc:
        return invalid("firm/site.html", _site_errors(exc), values, firm=firm, site=site)
    db.session.commit()
    flash(_l("The site is saved."), "success")
    return redirect(url_for("web.firm_profile"))


@bp.post("/firm/sites/<int:site_id>/main")
@firm_required
def site_main(site_id: int) -> Response:
    site_service.make_main(db_session(), _my_site(site_id))
    db.session.commit()
    flash(_l("This site is now your main site."), "success")
    return redirect(url_for("web.firm_profile"))


@bp.post("/firm/sites/<int:site_id>/delete")
@firm_required
def site_delete(site_id: int) -> Response:
    try:
        site_service.delete_site(db_session(), _my_site(site_id))
    except Conflict as exc:
        db.session.rollback()
        flash(str(exc.args[0]), "error")
        return redirect(url_for("web.firm_profile"))
    db.session.commit()
    flash(_l("The site is removed."), "success")
    return redirect(url_for("web.firm_profile"))
