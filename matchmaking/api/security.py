"""Bearer-token authentication for every API route not declared public, and role checks."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import Forbidden, Unauthorized

from ..extensions import db, db_session
from ..models import Firm, Role, User
from ..services import tokens
from .openapi import is_public

F = TypeVar("F", bound=Callable[..., Any])


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def authenticate() -> None:
    """Before each API request: resolve the bearer token to a user, or answer 401."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or is_public(view):
        return
    token = bearer_token()
    row = tokens.find(db_session(), token, idle_days=current_app.config["API_TOKEN_IDLE_DAYS"]) if token else None
    if row is None:
        raise Unauthorized()
    if tokens.touch(row):
        db.session.commit()  # keep "last used" even on reads, which never commit
    g.api_user = row.user
    g.api_token = token


def current_user() -> User:
    user: User = g.api_user
    return user


def current_firm() -> Firm:
    """The caller's firm; staff accounts have none and cannot act for a firm."""
    firm = current_user().firm
    if firm is None:
        exc = Forbidden()
        exc.problem_detail = _l("This account belongs to no firm.")  # type: ignore[attr-defined]
        raise exc
    return firm


def require_roles(*roles: Role) -> Callable[[F], F]:
    """Only these roles may call the view (e.g. statistics for analysts, facilitators, admins)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current_user().role not in roles:
                raise Forbidden()
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
