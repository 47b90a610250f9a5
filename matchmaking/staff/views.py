"""The facilitators' pages: the queue, one match, follow-up, listings kept for firms, reminders."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from ..extensions import db, db_session
from ..models import FollowUp, Frequency, Listing, MaterialFamily, Role, Unit, utcnow
from ..services import audit, decisions, facilitation, verification
from ..services.errors import Conflict, ValidationError
from ..web import explain
from . import bp
from .access import FACILITATION, STATISTICS, roles_required, staff_user

PAGE_SIZE = 50


@bp.get("/")
@roles_required(STATISTICS)
def home() -> Response:
    """Facilitators start from their queue, analysts from the statistics."""
    if staff_user().role in (Role.facilitator, Role.admin):
        return redirect(url_for("staff.queue"))
    return redirect(url_for("staff.statistics"))


@bp.get("/queue")
@roles_required(FACILITATION)
def queue() -> str:
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    items, total = facilitation.queue(db_session(), limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    # The queue names the firms behind anonymous listings: the look is audited, like a match's.
    audit.record(db_session(), staff_user(), audit.MATCHES_LISTED, page="queue",
                 match_ids=audit.ids(item.match for item in items))
    db.session.commit()
    return render_template("staff/queue.html", items=items, total=total, page=page,
                           pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
                           counts=facilitation.follow_up_counts(db_session()),
                           labels=facilitation.FOLLOW_UP_LABELS)


@bp.get("/follow-up")
@roles_required(FACILITATION)
def pipeline() -> str:
    wanted = request.args.get("status")
    status = FollowUp(wanted) if wanted in {s.value for s in FollowUp} else None
    matches = facilitation.pipeline(db_session(), follow_up=status)
    audit.record(db_session(), staff_user(), audit.MATCHES_LISTED, page="follow-up", match_ids=audit.ids(matches))
    db.session.commit()
    return render_template("staff/pipeline.html", matches=matches,
                           status=status, counts=facilitation.follow_up_counts(db_session()),
                           labels=facilitation.FOLLOW_UP_LABELS, order=[*facilitation.FOLLOW_UP_ORDER,
                                                                        FollowUp.dropped])


def _match_page(match_id: int, *, errors: dict[str, Any] | None = None, values: dict[str, Any] | None = None,
                status: int = 200) -> tuple[str, int]:
    match = facilitation.open_match(db_session(), staff_user(), match_id)
    db.session.commit()  # the audit row of this look stays even if the page fails later
    return render_template("staff/match.html", match=match, notes=facilitation.notes(db_session(), match),
                           why=explain.phrase(match.explanation, str(get_locale())),
                           components=explain.components(match.explanation),
                           vetoes=(match.explanation or {}).get("vetoes") or [],
                           decline_reasons=decisions.DECLINE_REASONS,
                           labels=facilitation.FOLLOW_UP_LABELS,
                           order=[*facilitation.FOLLOW_UP_ORDER, FollowUp.dropped],
                           errors=errors or {}, values=values or {}), status


@bp.get("/matches/<int(max=2147483647):match_id>")
@roles_required(FACILITATION)
def match(match_id: int) -> tuple[str, int]:
    return _match_page(match_id)


def _load(match_id: int) -> Any:
    from ..models import Match

    found = db.session.get(Match, match_id)
    if found is None:
        abort(404)
    return found


@bp.post("/matches/<int(max=2147483647):match_id>/introduce")
@roles_required(FACILITATION)
def introduce(match_id: int) -> Any:
    found = _load(match_id)
    try:
        made = facilitation.introduce(db_session(), found, staff_user(), request.form.get("message"))
    except ValidationError as exc:
        db.session.rollback()
        return _match_page(match_id, errors=exc.errors, values=dict(request.form), status=422)
    except Conflict as exc:
        db.session.rollback()
        flash(str(exc.args[0]) if exc.args else str(_l("Not possible now")), "error")
        return redirect(url_for("staff.match", match_id=match_id))
    db.session.commit()
    flash(_l("The two firms are introduced: %(n)s people notified.", n=len(made)), "success")
    return redirect(url_for("staff.match", match_id=match_id))


@bp.post("/matches/<int(max=2147483647):match_id>/notes")
@roles_required(FACILITATION)
def add_note(match_id: int) -> Any:
    found = _load(match_id)
    try:
        facilitation.add_note(db_session(), found, staff_user(), request.form.get("text"))
    except ValidationError as exc:
        db.session.rollback()
        return _match_page(match_id, errors=exc.errors, values=dict(request.form), status=422)
    db.session.commit()
    flash(_l("Note added."), "success")
    return redirect(url_for("staff.match", match_id=match_id) + "#notes")


@bp.post("/matches/<int(max=2147483647):match_id>/follow-up")
@roles_required(FACILITATION)
def follow_up(match_id: int) -> Any:
    found = _load(match_id)
    try:
        facilitation.set_follow_up(db_session(), found, staff_user(), request.form.get("follow_up"),
                                   request.form.get("reason"))
    except ValidationError as exc:
        db.session.rollback()
        return _match_page(match_id, errors=exc.errors, values=dict(request.form), status=422)
    db.session.commit()
    flash(_l("Follow-up updated."), "success")
    return redirect(url_for("staff.match", match_id=match_id))


# --- firms helped by the CCMA ---------------------------------------------------------------------


@bp.get("/firms")
@roles_required(FACILITATION)
def firms() -> str:
    q = request.args.get("q", "")
    return render_template("staff/firms.html", firms=facilitation.firms(db_session(), q), q=q)


@bp.get("/firms/<int(max=2147483647):firm_id>")
@roles_required(FACILITATION)
def firm(firm_id: int) -> str:
    found = facilitation.firm(db_session(), firm_id)
    listings = facilitation.firm_listings(db_session(), found)
    # Contacts, sites and every listing, anonymous ones included: what other firms may not see.
    audit.record(db_session(), staff_user(), audit.FIRM_VIEWED, "firm", found.id, listing_ids=audit.ids(listings))
    db.session.commit()
    return render_template("staff/firm.html", firm=found, listings=listings)


def _form_options() -> dict[str, Any]:
    from sqlalchemy import select

    families = db.session.execute(select(MaterialFamily.slug, MaterialFamily.label_fr, MaterialFamily.label_en)
                                  .order_by(MaterialFamily.label_fr)).all()
    return {"families": families, "units": [u.value for u in Unit], "frequencies": [f.value for f in Frequency]}


LISTING_FIELDS = ("kind", "title", "description", "low_code", "material_family", "quantity", "unit", "frequency",
                  "radius_km", "commune_insee", "available_from", "available_until", "price_eur_per_unit")


def _listing_data() -> dict[str, Any]:
    data: dict[str, Any] = {k: request.form.get(k, "") for k in LISTING_FIELDS if k in request.form}
    data["anonymous"] = request.form.get("anonymous") == "on"
    for optional in ("radius_km", "price_eur_per_unit", "commune_insee", "low_code", "material_family",
                     "available_from", "available_until"):
        if data.get(optional) == "":
            data.pop(optional)
    return data


@bp.route("/firms/<int(max=2147483647):firm_id>/listings/new", methods=["GET", "POST"])
@roles_required(FACILITATION)
def new_listing(firm_id: int) -> Any:
    found = facilitation.firm(db_session(), firm_id)
    if request.method == "GET":
        return render_template("staff/listing_form.html", firm=found, listing=None, values={"kind": "offer"},
                               errors={}, **_form_options())
    try:
        listing = facilitation.create_listing_for(db_session(), staff_user(), found, _listing_data(),
                                                  publish=request.form.get("publish", "on") == "on")
    except ValidationError as exc:
        db.session.rollback()
        return render_template("staff/listing_form.html", firm=found, listing=None, values=dict(request.form),
                               errors=exc.errors, **_form_options()), 422
    db.session.commit()
    flash(_l("Listing “%(title)s” saved for %(firm)s.", title=listing.title, firm=found.name), "success")
    return redirect(url_for("staff.firm", firm_id=found.id))


@bp.route("/listings/<int(max=2147483647):listing_id>/edit", methods=["GET", "POST"])
@roles_required(FACILITATION)
def edit_listing(listing_id: int) -> Any:
    listing = db.session.get(Listing, listing_id)
    if listing is None:
        abort(404)
    if request.method == "GET":
        values = {k: getattr(listing, k) for k in LISTING_FIELDS if hasattr(listing, k)}
        values.update(kind=listing.kind.value, unit=listing.unit.value, frequency=listing.frequency.value,
                      anonymous="on" if listing.anonymous else "")
        values = {k: ("" if v is None else v) for k, v in values.items()}
        audit.record(db_session(), staff_user(), audit.LISTING_VIEWED, "listing", listing.id, firm_id=listing.firm_id)
        db.session.commit()
        return render_template("staff/listing_form.html", firm=listing.firm, listing=listing, values=values,
                               errors={}, **_form_options())
    data = _listing_data()
    data.pop("kind", None)  # an offer stays an offer
    try:
        facilitation.update_listing_for(db_session(), staff_user(), listing, data)
    except ValidationError as exc:
        db.session.rollback()
        return render_template("staff/listing_form.html", firm=listing.firm, listing=listing,
                               values=dict(request.form), errors=exc.errors, **_form_options()), 422
    db.session.commit()
    flash(_l("Listing updated."), "success")
    return redirect(url_for("staff.firm", firm_id=listing.firm_id))


@bp.get("/reminders")
@roles_required(FACILITATION)
def reminders() -> str:
    due = facilitation.listings_due_for_reminder(db_session(), utcnow())
    audit.record(db_session(), staff_user(), audit.LISTINGS_LISTED, page="reminders", listing_ids=audit.ids(due))
    db.session.commit()
    return render_template("staff/reminders.html", due=due, last_confirmed=facilitation.last_confirmed)


# --- who is who: claims on a SIRET, firms checked by the CCMA -----------------------------------


@bp.post("/firms/<int(max=2147483647):firm_id>/verified")
@roles_required(FACILITATION)
def firm_verified(firm_id: int) -> Response:
    found = facilitation.firm(db_session(), firm_id)
    verified = request.form.get("verified") == "on"
    verification.set_verified(db_session(), found, staff_user(), verified)
    db.session.commit()
    if verified:
        flash(_l("%(firm)s is shown as verified by the CCMA.", firm=found.name), "success")
    else:
        flash(_l("%(firm)s is no longer shown as verified by the CCMA.", firm=found.name), "success")
    return redirect(url_for("staff.firm", firm_id=found.id))


@bp.get("/claims")
@roles_required(FACILITATION)
def claims() -> str:
    pending = verification.pending_claims(db_session())
    # The page names the claimants and the firms' members: the look is audited.
    audit.record(db_session(), staff_user(), audit.CLAIMS_LISTED, claim_ids=audit.ids(pending))
    db.session.commit()
    return render_template("staff/claims.html", pending=pending,
                           decided=verification.recent_decisions(db_session()), errors={})


@bp.post("/claims/<int(max=2147483647):claim_id>/decision")
@roles_required(FACILITATION)
def claim_decision(claim_id: int) -> Any:
    claim = verification.get_claim(db_session(), claim_id)
    decision = request.form.get("decision")
    try:
        if decision == "accept":
            verification.accept_claim(db_session(), claim, staff_user())
            message = _l("%(person)s is now a member of %(firm)s; its members are told by e-mail.",
                         person=claim.user.name or claim.user.email, firm=claim.firm.name)
        elif decision == "reject":
            verification.reject_claim(db_session(), claim, staff_user(), request.form.get("note"))
            message = _l("The request of %(person)s is declined; they are told by e-mail.",
                         person=claim.user.name or claim.user.email)
        else:
            raise ValidationError({"decision": _l("Choose to accept or to decline the request.")})
    except ValidationError as exc:
        db.session.rollback()
        flash(" ".join(str(m) for m in exc.errors.values()), "error")
        return redirect(url_for("staff.claims"))
    except Conflict as exc:
        db.session.rollback()
        flash(str(exc.args[0]) if exc.args else str(_l("Not possible now")), "error")
        return redirect(url_for("staff.claims"))
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("staff.claims"))
