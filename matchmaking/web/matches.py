"""The match inbox, one match's page (decide, see contacts, record exchanges), notifications."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, not_, or_, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from ..extensions import db, db_session
from ..models import Decision, Firm, Listing, Match, MatchStatus, Notification, Site
from ..services import decisions, queries, visibility
from ..services import notifications as notification_service
from ..services.errors import Conflict, ValidationError
from . import bp, explain
from .common import audience, firm_required, form_values, my_firm, signed_in, user

OPEN = (MatchStatus.proposed, MatchStatus.interested, MatchStatus.accepted)
INBOX_PAGE = 25  # matches per page of the inbox: a phone screen's worth of decisions
STATUS_ORDER = {MatchStatus.accepted: 0, MatchStatus.interested: 1, MatchStatus.proposed: 2,
                MatchStatus.declined: 3, MatchStatus.stale: 4}


@dataclass
class Row:
    """One match seen from my firm's side."""

    match: Match
    mine: Listing
    other: Listing
    other_view: visibility.ListingView
    my_decision: Decision
    their_decision: Decision
    distance_km: float | None
    phrase: str

    @property
    def waiting_for_me(self) -> bool:
        return waiting_for(self.match, self.my_decision, self.their_decision)


def waiting_for(match: Match, mine: Decision, theirs: Decision) -> bool:
    """The match waits for my firm's decision."""
    return match.status in (MatchStatus.proposed, MatchStatus.interested) and \
        mine in (Decision.pending, Decision.interested) and \
        not (mine is Decision.interested and theirs is Decision.pending)


def row(match: Match, firm: Firm) -> Row:
    seen = audience()
    mine_is_offer = match.offer.firm_id == firm.id
    mine, other = (match.offer, match.need) if mine_is_offer else (match.need, match.offer)
    my_decision = match.offer_decision if mine_is_offer else match.need_decision
    their_decision = match.need_decision if mine_is_offer else match.offer_decision
    distance = seen.distance_between(mine, other)
    data = seen.explanation(match.explanation, other, distance)
    return Row(match, mine, other, seen.view(other), my_decision, their_decision, distance,
               explain.phrase(data, str(get_locale() or "fr"), distance))


def inbox_matches(firm: Firm, *, status: str | None = None, page: int = 1) -> tuple[list[Row], int, int]:
    """A page of my firm's matches, best first within: accepted, in discussion, proposed,
    declined; the number of pages; and how many under the shown threshold were left out."""
    matches, total, hidden = _inbox(firm, status=status, page=page)
    return [row(m, firm) for m in matches], max((total + INBOX_PAGE - 1) // INBOX_PAGE, 1), hidden


def waiting_matches(firm: Firm, n: int) -> list[Row]:
    """The first `n` matches of the inbox that wait for my firm, chosen by the database (the
    dashboard shows a few; the firm may have hundreds)."""
    mine = select(Listing.id).where(Listing.firm_id == firm.id)

    def waits(my: Any, their: Any) -> Any:
        return and_(my.in_((Decision.pending, Decision.interested)),
                    not_(and_(my == Decision.interested, their == Decision.pending)))

    query = (
        select(Match)
        .where(Match.id.in_(queries.firm_match_ids(firm.id)),
               Match.status.in_((MatchStatus.proposed, MatchStatus.interested)), not_(queries.weak_lead()),
               or_(and_(Match.offer_id.in_(mine), waits(Match.offer_decision, Match.need_decision)),
                   and_(Match.need_id.in_(mine), waits(Match.need_decision, Match.offer_decision))))
        .options(*_places())
        .order_by(*queries.mixed_order(Match, case((Match.status == MatchStatus.interested, 1), else_=2),
                                       Match.score.desc()))
        .limit(n)
    )
    return [row(match, firm) for match in db.session.scalars(query)]


def _places() -> list[Any]:
    sides = (Match.offer, Match.need)
    return [*[selectinload(rel).selectinload(Listing.site).selectinload(Site.commune) for rel in sides],
            *[selectinload(rel).selectinload(Listing.firm) for rel in sides]]


def _inbox(firm: Firm, *, status: str | None, page: int) -> tuple[list[Match], int, int]:
    query = select(Match).where(Match.id.in_(queries.firm_match_ids(firm.id)), Match.status != MatchStatus.stale)
    if status == "declined":
        query = query.where(Match.status == MatchStatus.declined)
    elif status in ("proposed", "interested", "accepted"):
        query = query.where(Match.status == MatchStatus(status))
    else:
        query = query.where(Match.status.in_(OPEN))
    # One count for both: the matches shown, and those under the threshold left out.
    weak_case = case((queries.weak_lead(), 1), else_=0)
    counted = query.with_only_columns(func.count(), func.coalesce(func.sum(weak_case), 0))
    everything, weak_ones = db.session.execute(counted).one()
    hidden = int(weak_ones)
    query = query.where(not_(queries.weak_lead()))
    rank = case({s: n for s, n in STATUS_ORDER.items()}, value=Match.status)
    page_query = (query.options(*_places()).order_by(*queries.mixed_order(Match, rank, Match.score.desc()))
                  .offset((page - 1) * INBOX_PAGE).limit(INBOX_PAGE))
    return list(db.session.scalars(page_query)), int(everything) - hidden, hidden


@bp.get("/matches")
@firm_required
def inbox() -> str:
    status = request.args.get("status") or ""
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    rows, pages, hidden = inbox_matches(my_firm(), status=status or None, page=page)
    return render_template("matches/inbox.html", rows=rows, status=status, page=page, pages=pages, hidden=hidden)


def _match(match_id: str) -> Match:
    return decisions.match_for(db_session(), user(), match_id)  # NotFound (404) unless my firm is a party


@bp.get("/matches/<public_id:match_id>")
@firm_required
def match_detail(match_id: str) -> str | tuple[str, int]:
    match = _match(match_id)
    viewer = user()
    assert viewer is not None
    # Seeing the match is reading what was said about it: its notices stop counting as unread.
    unread = db.session.scalars(select(Notification.id).where(
        Notification.user_id == viewer.id, Notification.match_id == match.id, Notification.read_at.is_(None)))
    ids = list(unread)
    if ids:
        notification_service.mark_read(db_session(), viewer, ids)
        db.session.commit()
    return _detail(match, {}, {})


def _detail(match: Match, values: dict[str, Any], errors: dict[str, Any], status: int = 200) -> str | tuple[str, int]:
    current = row(match, my_firm())
    data = audience().explanation(match.explanation, current.other, current.distance_km)
    page = render_template(
        "matches/detail.html", r=current, match=match, components=explain.components(data),
        decline_reasons=decisions.DECLINE_REASONS,
        values=values or {"unit": current.mine.unit.value, "date": date.today().isoformat()}, errors=errors,
    )
    return (page, status) if status != 200 else page


@bp.post("/matches/<public_id:match_id>/decision")
@firm_required
def match_decision(match_id: str) -> Response:
    match = _match(match_id)
    action = request.form.get("decision")
    chosen = {"interested": Decision.interested, "accepted": Decision.accepted,
              "declined": Decision.declined}.get(action or "")
    if chosen is None:
        flash(_l("Choose what to do with this match."), "error")
        return redirect(url_for("web.match_detail", match_id=match.public_id))
    current_user = user()
    assert current_user is not None
    try:
        match = decisions.decide(db_session(), match, current_user, chosen, request.form.get("reason") or None)
    except ValidationError as exc:
        db.session.rollback()
        flash(next(iter(exc.messages().values())), "error")
        return redirect(url_for("web.match_detail", match_id=match_id))
    except Conflict as exc:
        db.session.rollback()
        flash(str(exc.args[0]) if exc.args else _l("Not possible now."), "error")
        return redirect(url_for("web.match_detail", match_id=match_id))
    db.session.commit()
    if match.status is MatchStatus.accepted:
        flash(_l("You have both accepted: each of you now sees the other's contact details."), "success")
    elif chosen is Decision.accepted:
        flash(_l("You accept this match. The other firm is told; its contact appears here once it accepts too."),
              "success")
    elif chosen is Decision.interested:
        flash(_l("Your interest is sent to the other firm."), "success")
    else:
        flash(_l("You declined this match."), "success")
    return redirect(url_for("web.match_detail", match_id=match.public_id))


@bp.post("/matches/<public_id:match_id>/exchanges")
@firm_required
def match_exchange(match_id: str) -> Any:
    match = _match(match_id)
    values = form_values()
    current_user = user()
    assert current_user is not None
    try:
        decisions.record_exchange(db_session(), match, current_user, {
            "quantity": request.form.get("quantity"), "unit": request.form.get("unit"),
            "date": request.form.get("date"),
        })
    except ValidationError as exc:
        db.session.rollback()
        return _detail(_match(match_id), values, exc.errors, 422)
    except Conflict as exc:
        db.session.rollback()
        return _detail(_match(match_id), values, {"quantity": exc.args[0] if exc.args else ""}, 409)
    db.session.commit()
    flash(_l("The exchange is recorded. Thank you: it counts in the territory's figures."), "success")
    return redirect(url_for("web.match_detail", match_id=match.public_id) + "#exchanges")


# --- notifications -------------------------------------------------------------------------------

NOTICE_TEXT = {
    "match.found": _l("New match for your listing “%(mine)s”: “%(other)s”."),
    "match.improved": _l("Better match for your listing “%(mine)s”: “%(other)s”."),
    "match.interested": _l("A firm is interested: “%(other)s” for your listing “%(mine)s”."),
    "match.accepted": _l("Accepted by both firms: “%(mine)s” and “%(other)s”. Contacts are revealed."),
    "match.declined": _l("The other firm declined: “%(other)s” for your listing “%(mine)s”."),
}


def notice_text(notification: Notification) -> str:
    payload = notification.payload or {}
    template = NOTICE_TEXT.get(notification.kind)
    other = str(payload.get("other_title") or "")
    if template is None:
        return str(payload.get("other_title") or notification.kind)
    return str(template) % {"mine": payload.get("listing_title") or "", "other": other}


@bp.get("/notifications")
@signed_in
def notifications() -> str:
    current_user = user()
    assert current_user is not None
    items = notification_service.for_user(db_session(), current_user, limit=100)
    return render_template("matches/notifications.html", items=items, notice_text=notice_text)


@bp.post("/notifications/read")
@signed_in
def notifications_read() -> Response:
    current_user = user()
    assert current_user is not None
    raw = request.form.get("id")
    ids = [int(raw)] if raw and raw.isdigit() else None
    notification_service.mark_read(db_session(), current_user, ids)
    db.session.commit()
    target = request.form.get("go")
    if ids and target and target.isalnum():
        return redirect(url_for("web.match_detail", match_id=target))
    return redirect(url_for("web.notifications"))
