"""What the pages share: the signed-in user, forms, ownership checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from ..extensions import db, db_session
from ..models import Firm, Role, User
from ..services import visibility
from ..services.errors import ValidationError

F = TypeVar("F", bound=Callable[..., Any])


def user() -> User | None:
    """The signed-in user's row, or None."""
    if not current_user.is_authenticated:
        return None
    return cast(User, current_user.user)


def my_firm() -> Firm:
    found = user()
    if found is None or found.firm is None:
        abort(404)
    return found.firm


def audience() -> visibility.Audience:
    """What the current viewer may see; built once per request."""
    if "audience" not in g:
        g.audience = visibility.audience(db_session(), user())
    return cast(visibility.Audience, g.audience)


STAFF_ROLES = frozenset({Role.facilitator, Role.analyst, Role.admin})


def staff_home() -> str | None:
    """The CCMA workspace's address, when the app has one."""
    return url_for("staff.home") if "staff.home" in current_app.view_functions else None


def home_url(account: User | None) -> str:
    """Where a user starts: a firm's space, the CCMA workspace for staff, else the listings."""
    if account is not None and account.firm is not None:
        return url_for("web.dashboard")
    if account is not None and account.role in STAFF_ROLES and staff_home():
        return str(staff_home())
    return url_for("web.index")


def firm_required(view: F) -> F:
    """Signed in, and a member of a firm (staff without a firm have no listings to manage)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for("web.sign_in", next=request.full_path.rstrip("?")))
        if current_user.user.firm is None:
            flash(_l("This page is for firms' accounts."), "info")
            return redirect(home_url(current_user.user))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def signed_in(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for("web.sign_in", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def safe_next(target: str | None, default: str) -> str:
    """A local path to go back to after signing in; anything else (another site) is ignored."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def form_page(template: str, *, values: Mapping[str, Any] | None = None, errors: Mapping[str, Any] | None = None,
              status: int = 200, **context: Any) -> tuple[str, int]:
    """A form with what the user typed and, next to each field, what is wrong with it."""
    return render_template(template, values=dict(values or {}), errors=dict(errors or {}), **context), status


def invalid(template: str, exc: ValidationError, values: Mapping[str, Any], **context: Any) -> tuple[str, int]:
    """Bad input: roll back whatever was flushed, and show the form again with the reasons (422)."""
    db.session.rollback()
    return form_page(template, values=values, errors=exc.errors, status=422, **context)


def form_values() -> dict[str, Any]:
    """The submitted fields, passwords and the CSRF token left out (never sent back to the page)."""
    return {k: v for k, v in request.form.items() if "password" not in k and k != "csrf_token"}


def back(default: str) -> Response:
    return redirect(safe_next(request.form.get("next") or request.args.get("next"), default))


def commune_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A commune typed as its INSEE code (5 digits, no postal code) is looked up as such."""
    commune = str(data.get("commune") or "").strip()
    if commune.isdigit() and len(commune) == 5 and not str(data.get("postal_code") or "").strip():
        data["commune_insee"] = commune
    return data
