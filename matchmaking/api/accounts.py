"""Accounts: register a firm with its first user, get and revoke tokens, who am I."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g, jsonify, request, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import Unauthorized

from ..extensions import db, db_session, limiter, sign_in_address_limit
from ..services import firms, tokens, users, verification
from ..services import sign_in as guard
from ..services import validation as v
from ..services.errors import ValidationError
from . import bp, schemas
from .openapi import operation
from .parsing import all_errors, json_body, json_body_partial
from .security import current_user


def _user_errors(data: dict[str, Any]) -> dict[str, Any]:
    """The user part's problems, checked alone when the firm part already failed."""
    errors = v.Collector()
    email = errors.check("user.email", v.email, data.get("email"))
    errors.check("user.password", users.validate_password, data.get("password"))
    errors.check("user.name", v.text, data.get("name"), max_length=120)
    if email and users.find_by_email(db_session(), email):
        errors.add("user.email", _l("An account already uses this e-mail address."))
    return errors.errors


def confirm_link(token: str) -> str:
    """The confirmation page's address on the configured site (never the request's Host header)."""
    return str(current_app.config["BASE_URL"]).rstrip("/") + url_for("web.confirm_email", token=token)


def _register_limit() -> str:
    return str(current_app.config["RATELIMIT_REGISTER"])


@bp.post("/auth/register")
@operation("Register a firm and its first user; returns a token", tags=["accounts"], public=True,
           body=schemas.RegisterInSchema, errors=[429],
           responses={201: ("Registered.", schemas.RegisterOutSchema)})
@limiter.limit(_register_limit)
def register() -> tuple[Response, int]:
    body, shape_errors = json_body_partial(schemas.RegisterInSchema)
    if "firm" not in body or "user" not in body:
        raise ValidationError(shape_errors)
    firm_data, user_data = body["firm"], body["user"]
    with all_errors(shape_errors):
        try:
            firm = firms.register_firm(db_session(), firm_data, prefix="firm.")
        except ValidationError as exc:
            errors = dict(exc.errors)
            if "firm.siret" in errors and isinstance(firm_data, dict) and verification.firm_by_siret(
                    db_session(), firm_data.get("siret")) is not None:
                errors["firm.siret"] = _l("This firm is already registered. If you work there, register on the "
                                          "web page and ask the CCMA to check it and add you to the firm.")
            raise ValidationError(errors | _user_errors(user_data)) from None
        user = users.create_user(db_session(), email=user_data.get("email"), password=user_data.get("password"),
                                 name=user_data.get("name"), firm=firm, prefix="user.", confirmed=False)
    if not firm.contact_email:
        firm.contact_email = user.email
    verification.send_confirmation(db_session(), user, link_for=confirm_link,
                                   secret_key=str(current_app.config["SECRET_KEY"]),
                                   hours=int(current_app.config["EMAIL_CONFIRM_HOURS"]))
    token = tokens.issue(db_session(), user, "registration")
    db.session.commit()
    return jsonify({"firm_id": firm.id, "user_id": user.id, "token": token}), 201


@bp.post("/auth/token")
@operation("Exchange an e-mail and password for a token", tags=["accounts"], public=True,
           body=schemas.TokenInSchema, responses={200: ("A new token.", schemas.TokenOutSchema)},
           errors=[401, 429])
@sign_in_address_limit
def issue_token() -> Response:
    data = json_body(schemas.TokenInSchema)
    # The web form's policy (services/sign_in.py): a wait is answered 429 with Retry-After (problems.py).
    user = guard.attempt(db_session(), data["email"], data["password"], address=request.remote_addr,
                         policy=guard.Policy.from_config(current_app.config))
    if user is None:
        db.session.commit()  # a wrong password is counted: keep the count
        exc = Unauthorized()
        exc.problem_detail = _l("Wrong e-mail address or password.")  # type: ignore[attr-defined]
        raise exc
    token = tokens.issue(db_session(), user, data.get("name"))
    db.session.commit()
    return jsonify({"token": token})


@bp.delete("/auth/token")
@operation("Revoke the token this request is made with", tags=["accounts"],
           responses={204: ("Revoked.", None)})
def revoke_token() -> tuple[str, int]:
    tokens.revoke(db_session(), g.api_token)
    db.session.commit()
    return "", 204


@bp.get("/me")
@operation("The signed-in user and their firm", tags=["accounts"], responses={200: ("You.", schemas.MeSchema)})
def me() -> Response:
    user = current_user()
    firm = user.firm
    return jsonify(schemas.MeSchema().dump({
        "user_id": user.id,
        "email": user.email,
        "email_confirmed": verification.is_confirmed(user),
        "name": user.name,
        "role": user.role,
        "firm": None if firm is None else {"id": firm.id, "name": firm.name, "siret": firm.siret,
                                            "naf_code": firm.naf_code, "verified": firm.verified},
    }))
