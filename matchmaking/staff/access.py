"""Who may open the CCMA workspace: a decorator per group of roles; anyone else gets a 404."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, g, redirect, request, url_for
from flask_login import current_user

from ..models import Role, User

F = TypeVar("F", bound=Callable[..., Any])

STATISTICS = frozenset({Role.analyst, Role.facilitator, Role.admin})
FACILITATION = frozenset({Role.facilitator, Role.admin})


def staff_user() -> User:
    return cast(User, g.staff_user)


def roles_required(roles: frozenset[Role]) -> Callable[[F], F]:
    """Signed-in users holding one of `roles`; others get a 404, so the workspace's addresses say
    nothing to those who may not use them. Visitors not signed in are sent to sign in first."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return redirect(url_for("web.sign_in", next=request.full_path.rstrip("?")))
            user = cast(User, getattr(current_user, "user", current_user))
            if user.role not in roles or not user.active:
                abort(404)
            g.staff_user = user
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator
