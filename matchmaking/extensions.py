"""Flask extensions, created unbound and initialised in create_app()."""

from __future__ import annotations

from flask import current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session

from .models import Base

db = SQLAlchemy(model_class=Base)
babel = Babel()
login_manager = LoginManager()
csrf = CSRFProtect()
# Storage comes from RATELIMIT_STORAGE_URI (Redis when REDIS_URL is set); no limit applies by default,
# only the ones declared on sign-in, registration and password reset.
limiter = Limiter(key_func=get_remote_address)


def db_session() -> Session:
    """The current app context's Session, for the services (typed `Session`). `db.session` is a
    scoped_session proxy: calling it returns the very Session its methods forward to."""
    return db.session()


def sign_in_account() -> str:
    """The account a sign-in attempt is for (web form or API body), folded, so that guesses at one
    account count together from whatever addresses they come."""
    body = request.get_json(silent=True) if request.is_json else None
    email = body.get("email") if isinstance(body, dict) else request.form.get("email")
    return "account:" + (email.strip().lower()[:200] if isinstance(email, str) else "")


def sign_in_account_limit() -> str:
    return str(current_app.config["RATELIMIT_SIGN_IN_ACCOUNT"])


def not_an_account_attempt() -> bool:
    return request.method != "POST" or sign_in_account() == "account:"


# One count per account for the web sign-in and the API's token endpoint together.
account_sign_in_limit = limiter.shared_limit(
    sign_in_account_limit, scope="sign-in-account", key_func=sign_in_account, exempt_when=not_an_account_attempt
)
