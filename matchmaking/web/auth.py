"""Registration, sign-in and sign-out, password reset, the account page.

The browser's cookie holds a random secret only; the UserSession row (its sha256) says who it is.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, logout_user
from werkzeug.wrappers import Response

from ..extensions import db, db_session, limiter, login_manager, sign_in_address_limit
from ..models import User, UserSession
from ..services import accounts, verification
from ..services import sign_in as guard
from ..services.errors import NotFound, ValidationError
from . import bp
from .common import back, commune_fields, form_page, form_values, home_url, invalid, safe_next, signed_in


class Account:
    """The signed-in user as Flask-Login sees it; attributes are the User row's."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, user: User, row: UserSession) -> None:
        self.user = user
        self.session_id = row.id

    @property
    def is_active(self) -> bool:
        return bool(self.user.active)

    def get_id(self) -> str:
        return str(self.user.id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.user, name)


def _cookie_name() -> str:
    return str(current_app.config["LOGIN_COOKIE_NAME"])


@login_manager.request_loader  # type: ignore[untyped-decorator]  # Flask-Login ships no type hints
def load_from_cookie(req: Any) -> Account | None:
    secret = req.cookies.get(_cookie_name())
    if not secret:
        return None
    config = current_app.config
    row = accounts.load_session(db_session(), secret, max_days=config["LOGIN_SESSION_DAYS"],
                                idle_days=config["LOGIN_IDLE_DAYS"])
    if row is None:
        g.drop_login_cookie = True
        return None
    if db.session.dirty:
        db.session.commit()  # last_seen_at moved; nothing else is pending this early in the request
    return Account(row.user, row)


login_manager.login_view = "web.sign_in"
login_manager.login_message = _l("Sign in to see this page.")
login_manager.login_message_category = "info"
login_manager.session_protection = None  # the server-side session row is the protection


@bp.before_app_request
def load_user_early() -> None:
    # Per-request values must not survive in an application context shared by several requests
    # (tests, CLI); then resolve the user before the view runs, so that the last_seen_at write
    # is committed on its own.
    for name in ("_login_user", "audience", "drop_login_cookie", "csrf_token", "csrf_valid", "_flask_babel"):
        g.pop(name, None)
    if (request.endpoint or "").endswith(".static"):
        return  # assets need no user: no database round trip for each of them
    _ = current_user.is_authenticated


@bp.after_app_request
def drop_dead_cookie(response: Response) -> Response:
    if g.get("drop_login_cookie"):
        response.delete_cookie(_cookie_name(), path="/")
    return response


def _start(response: Response, user: User) -> Response:
    """Sign the user in on this browser: a fresh session row and cookie, a fresh Flask session."""
    lang = session.get("lang")
    session.clear()  # no CSRF token or other value from before signing in survives
    if lang:
        session["lang"] = lang
    secret, _row = accounts.start_session(db_session(), user, ip=request.remote_addr,
                                          user_agent=request.headers.get("User-Agent"))
    db.session.commit()
    config = current_app.config
    response.set_cookie(
        _cookie_name(), secret, max_age=int(timedelta(days=config["LOGIN_SESSION_DAYS"]).total_seconds()),
        path="/", secure=bool(config.get("SESSION_COOKIE_SECURE")), httponly=True, samesite="Lax",
    )
    g.pop("drop_login_cookie", None)
    return response


def _register_limit() -> str:
    return str(current_app.config["RATELIMIT_REGISTER"])


def _not_a_submission() -> bool:
    # Only submissions count: reading the form is never limited.
    return request.method != "POST"


@bp.route("/sign-in", methods=["GET", "POST"])
@sign_in_address_limit
def sign_in() -> Any:
    next_url = request.values.get("next") or ""
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(safe_next(next_url, home_url(current_user.user)))
        return render_template("auth/sign_in.html", values={"next": next_url}, errors={})
    values = form_values()
    try:
        user = accounts.sign_in(db_session(), request.form.get("email"), request.form.get("password"),
                                address=request.remote_addr, policy=guard.Policy.from_config(current_app.config))
    except guard.Delayed as exc:
        db.session.rollback()
        body, status = form_page("auth/sign_in.html", values=values, errors={"password": exc.message()}, status=429)
        return body, status, {"Retry-After": str(exc.retry_after)}
    except ValidationError as exc:
        db.session.commit()  # a wrong password is counted (services/sign_in.py): keep the count
        return form_page("auth/sign_in.html", values=values, errors=exc.errors, status=422)
    return _start(redirect(safe_next(next_url, home_url(user))), user)


@bp.post("/sign-out")
def sign_out() -> Response:
    accounts.end_session(db_session(), request.cookies.get(_cookie_name()))
    db.session.commit()
    logout_user()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_l("You are signed out."), "success")
    response = redirect(url_for("web.index"))
    response.delete_cookie(_cookie_name(), path="/")
    return response


FIRM_FIELDS = ("name", "siret", "naf_code", "postal_code", "commune", "commune_insee", "address", "contact_phone")
USER_FIELDS = ("name", "email", "password", "password_confirm")


def confirm_link(token: str) -> str:
    # The configured address, never the request's Host header, which anyone can forge.
    return str(current_app.config["BASE_URL"]).rstrip("/") + url_for("web.confirm_email", token=token)


def _confirm_hours() -> int:
    return int(current_app.config["EMAIL_CONFIRM_HOURS"])


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_register_limit, exempt_when=_not_a_submission)
def register() -> Any:
    if request.method == "GET":
        return render_template("auth/register.html", values={}, errors={}, claimable=False)
    values = form_values()
    firm_data = commune_fields({f: request.form.get("firm_" + f, "") for f in FIRM_FIELDS})
    user_data = {f: request.form.get("user_" + f, "") for f in USER_FIELDS}
    claim = request.form.get("claim") == "on"
    try:
        user = accounts.register(db_session(), firm_data, user_data, confirm_link=confirm_link,
                                 secret_key=str(current_app.config["SECRET_KEY"]), claim=claim,
                                 claim_message=request.form.get("claim_message", ""), hours=_confirm_hours())
    except ValidationError as exc:
        if "firm_commune_insee" in exc.errors:
            exc.errors["firm_commune"] = exc.errors.pop("firm_commune_insee")
        return invalid("auth/register.html", exc, values, claimable=isinstance(exc, accounts.SiretTaken) or claim)
    db.session.commit()
    if user.firm is None:
        flash(_l("Your request is sent to the CCMA: a facilitator will check that you belong to this firm and "
                 "add you to it. You will be told by e-mail."), "success")
        flash(_l("We sent you an e-mail: open its link to confirm your address."), "info")
        return _start(redirect(url_for("web.account")), user)
    flash(_l("Welcome! Your firm is registered. Open the link we just e-mailed you to confirm your address: "
             "then you can publish your listings."), "success")
    return _start(redirect(url_for("web.dashboard")), user)


@bp.get("/account/confirm/<token>")
def confirm_email(token: str) -> Any:
    viewer = current_user.user if current_user.is_authenticated else None
    try:
        user = verification.confirm_email(db_session(), token, secret_key=str(current_app.config["SECRET_KEY"]),
                                          viewer=viewer, hours=_confirm_hours())
    except verification.LinkExpired:
        db.session.rollback()
        return render_template("auth/confirm.html", state="expired", signed_in=viewer is not None), 404
    except NotFound:
        db.session.rollback()
        return render_template("auth/confirm.html", state="invalid", signed_in=viewer is not None), 404
    db.session.commit()
    return render_template("auth/confirm.html", state="confirmed", signed_in=viewer is not None,
                           next_url=home_url(user) if viewer is not None else url_for("web.sign_in"))


@bp.post("/account/confirm")
@limiter.limit(_register_limit)
@signed_in
def resend_confirmation() -> Response:
    user = current_user.user
    if verification.is_confirmed(user):
        flash(_l("Your e-mail address is already confirmed."), "info")
    else:
        verification.send_confirmation(db_session(), user, link_for=confirm_link,
                                       secret_key=str(current_app.config["SECRET_KEY"]), hours=_confirm_hours())
        db.session.commit()
        flash(_l("A new confirmation e-mail is on its way to %(email)s. Open its link within %(hours)s hours.",
                 email=user.email, hours=_confirm_hours()), "success")
    return back(url_for("web.account"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_register_limit, exempt_when=_not_a_submission)
def forgot_password() -> Any:
    if request.method == "GET":
        return render_template("auth/forgot.html", values={}, errors={}, sent=False)
    values = form_values()
    try:
        accounts.request_password_reset(
            db_session(), request.form.get("email"),
            # The configured address, never the request's Host header, which anyone can forge.
            link_for=lambda token: str(current_app.config["BASE_URL"]).rstrip("/")
            + url_for("web.reset_password", token=token),
            hours=int(current_app.config["PASSWORD_RESET_HOURS"]),
        )
    except ValidationError as exc:
        return invalid("auth/forgot.html", exc, values, sent=False)
    db.session.commit()
    return render_template("auth/forgot.html", values=values, errors={}, sent=True)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_register_limit, exempt_when=_not_a_submission)
def reset_password(token: str) -> Any:
    if accounts.find_reset(db_session(), token) is None:
        return render_template("auth/reset.html", expired=True, values={}, errors={}), 404
    if request.method == "GET":
        return render_template("auth/reset.html", expired=False, values={}, errors={})
    try:
        user = accounts.reset_password(db_session(), token, request.form.get("password"),
                                       request.form.get("password_confirm"))
    except ValidationError as exc:
        return invalid("auth/reset.html", exc, {}, expired=False)
    db.session.commit()
    flash(_l("Your password is changed. You are signed in."), "success")
    return _start(redirect(home_url(user)), user)


@bp.route("/account", methods=["GET", "POST"])
@signed_in
def account() -> Any:
    if request.method == "GET":
        return form_page("auth/account.html", claims=verification.claims_of(db_session(), current_user.user))
    try:
        accounts.change_password(db_session(), current_user.user, request.form.get("current_password"),
                                 request.form.get("password"), request.form.get("password_confirm"),
                                 keep_session=current_user.session_id)
    except ValidationError as exc:
        return invalid("auth/account.html", exc, {}, claims=verification.claims_of(db_session(), current_user.user))
    db.session.commit()
    flash(_l("Your password is changed. Your other browsers are signed out."), "success")
    return back(url_for("web.account"))
