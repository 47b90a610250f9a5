"""The match workflow: your firm's matches, decisions, realised exchanges."""

from __future__ import annotations

from flask import Response, jsonify

from ..extensions import db, db_session
from ..models import Match
from ..services import decisions, queries, visibility
from . import bp, render, schemas
from .openapi import operation
from .parsing import all_errors, json_body_partial, query_args
from .security import current_user

ID = "<public_id:match_id>"


@bp.get("/matches")
@operation("Your firm's matches, newest first", tags=["matches"], query=schemas.MatchQuerySchema,
           headers={200: render.TOTAL_HEADERS},
           responses={200: ("A page of matches.", schemas.MatchOutSchema(many=True))})
def list_matches() -> Response:
    args = query_args(schemas.MatchQuerySchema)
    page, per_page = args.get("page", 1), args.get("per_page", 50)
    user = current_user()
    items: list[Match]
    if user.firm_id is None:
        items, total = [], 0
    else:
        items, total = queries.firm_matches(db_session(), user.firm_id, status=args.get("status"),
                                            page=page, per_page=per_page)
    audience = visibility.audience(db_session(), user)
    return render.page([render.match(audience, item, user) for item in items], total, page, per_page)


@bp.get(f"/matches/{ID}")
@operation("One of your firm's matches", tags=["matches"],
           responses={200: ("The match.", schemas.MatchOutSchema)})
def get_match(match_id: str) -> Response:
    user = current_user()
    match = decisions.match_for(db_session(), user, match_id)
    return jsonify(render.match(visibility.audience(db_session(), user), match, user))


def _decide(match_id: str, action: str, **extra: str | None) -> Response:
    user = current_user()
    match = decisions.match_for(db_session(), user, match_id)
    match = getattr(decisions, action)(db_session(), match, user, **extra)
    db.session.commit()
    return jsonify(render.match(visibility.audience(db_session(), user), match, user))


@bp.post(f"/matches/{ID}/interest")
@operation("Say your firm is interested", tags=["matches"], errors=[409],
           responses={200: ("The match.", schemas.MatchOutSchema)})
def interest(match_id: str) -> Response:
    return _decide(match_id, "express_interest")


@bp.post(f"/matches/{ID}/accept")
@operation("Accept; once both firms have, identities are revealed", tags=["matches"], errors=[409],
           responses={200: ("The match.", schemas.MatchOutSchema)})
def accept(match_id: str) -> Response:
    return _decide(match_id, "accept")


@bp.post(f"/matches/{ID}/decline")
@operation("Decline (either firm, until both have accepted), optionally saying why", tags=["matches"], errors=[409],
           query=schemas.DeclineQuerySchema, responses={200: ("The match.", schemas.MatchOutSchema)})
def decline(match_id: str) -> Response:
    args = query_args(schemas.DeclineQuerySchema)
    return _decide(match_id, "decline", reason=args.get("reason"))


@bp.post(f"/matches/{ID}/exchanges")
@operation("Record a realised exchange on an accepted match", tags=["matches"], errors=[409],
           body=schemas.ExchangeInSchema, responses={201: ("The exchange.", schemas.ExchangeOutSchema)})
def record_exchange(match_id: str) -> tuple[Response, int]:
    user = current_user()
    match = decisions.match_for(db_session(), user, match_id)
    data, shape_errors = json_body_partial(schemas.ExchangeInSchema)
    with all_errors(shape_errors):
        exchange = decisions.record_exchange(db_session(), match, user, data)
    db.session.commit()
    return jsonify(render.exchange(exchange)), 201


@bp.get(f"/matches/{ID}/exchanges")
@operation("The exchanges recorded on one of your matches", tags=["matches"],
           responses={200: ("Exchanges, oldest first.", schemas.ExchangeOutSchema(many=True))})
def list_exchanges(match_id: str) -> Response:
    match = decisions.match_for(db_session(), current_user(), match_id)
    return jsonify([render.exchange(item) for item in match.exchanges])
