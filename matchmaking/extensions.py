"""Flask extensions, created unbound and initialised in create_app()."""

from __future__ import annotations

from flask import Response, current_app, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session

from .models import Base
from .services.sign_in import address_key

db = SQLAlchemy(model_class=Base)
babel = Babel()
login_manager = LoginManager()
csrf = CSRFProtect()
# Storage comes from RATELIMIT_STORAGE_URI (Redis when REDIS_URL is set); no limit applies by default,
# only the ones declared on sign-in, registration and password reset.
limiter = Limiter(key_func=lambda: address_key(request.remote_addr))  # IPv6: per /64


def db_session() -> Session:
    """The current app context's Session, for the services (typed `Session`). `db.session` is a
    scoped_session proxy: calling it returns the very Session its methods forward to."""
    return db.session()


def _sign_in_limit() -> str:
    return str(current_app.config["RATELIMIT_SIGN_IN"])


def _wrong_password(response: Response) -> bool:
    # Only refused passwords count (422 on the form, 401 on the API): colleagues signing in from
    # one office never use up each other's allowance.
    return response.status_code in (401, 422)


def _not_a_submission() -> bool:
    return request.method != "POST"


# Wrong passwords per client address, whatever the accounts tried (one address spraying many
# accounts), for the web sign-in and the API's token endpoint each. Guesses at one account are
# slowed per account and address by services/sign_in.py.
sign_in_address_limit = limiter.limit(_sign_in_limit, deduct_when=_wrong_password, exempt_when=_not_a_submission)
