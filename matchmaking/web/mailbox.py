"""The local mailbox of the embedded default (/boite-mail) and the one-click unsubscribe link."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, render_template, request
from flask.typing import ResponseReturnValue

from ..extensions import db, db_session
from ..models import User
from ..services import audit, delivery, preferences

bp = Blueprint("mailbox", __name__)


def viewer() -> User | None:
    """The signed-in user, when sign-in is set up; None otherwise."""
    if not hasattr(current_app, "login_manager"):
        return None
    from flask_login import current_user

    user: Any = current_user
    if not getattr(user, "is_authenticated", False):
        return None
    inner = getattr(user, "user", user)  # the sign-in wrapper keeps the row as .user
    return inner if isinstance(inner, User) else db.session.get(User, int(user.get_id()))


@bp.get("/boite-mail")
def mailbox() -> ResponseReturnValue:
    """E-mails kept instead of sent (no SMTP server configured): the signed-in user's own, all for admins."""
    user = viewer()
    if user is None:
        if hasattr(current_app, "login_manager"):
            return current_app.login_manager.unauthorized()  # type: ignore[no-any-return]
        abort(404)
    messages = delivery.mailbox_for(db_session(), user)
    others = [m for m in messages if m.to != user.email]
    if others:  # an administrator reading other people's e-mails (reset links included): audited
        audit.record(db_session(), user, audit.MAILBOX_VIEWED, message_ids=audit.ids(others))
        db.session.commit()
    opened = request.args.get("m", type=int)
    return render_template("mailbox/mailbox.html", messages=messages, opened=opened,
                           smtp=bool(current_app.config.get("SMTP_HOST")))


@bp.route("/notifications/desabonnement/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> ResponseReturnValue:
    """GET asks for confirmation; POST (the button, or a mail client's RFC 8058 one-click) stops e-mails."""
    user = preferences.user_for_token(db_session(), token, current_app.config["SECRET_KEY"])
    if user is None:
        abort(404)
    done = False
    if request.method == "POST":
        preferences.unsubscribe(db_session(), user)
        db.session.commit()
        done = True
    return render_template("mailbox/unsubscribe.html", user=user, done=done, token=token)


@bp.record_once
def _exempt_from_csrf(state: Any) -> None:
    # Mail clients post the one-click unsubscribe without a form token; the signed link is the proof.
    csrf = state.app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt("matchmaking.web.mailbox.unsubscribe")
