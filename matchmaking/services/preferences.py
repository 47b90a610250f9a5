"""How each user wants to hear about matches: rhythm (instant, daily or weekly digest, off),
minimum score, and channels (e-mail, the firm's webhooks). In-app notices follow the rhythm's
"off" and the minimum score too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from ..models import NotifyMode, User
from . import validation as v

MODES = {m.value: m.value for m in NotifyMode} | {
    "immédiat": "instant", "immediat": "instant", "quotidien": "daily", "hebdomadaire": "weekly", "aucun": "off",
}
UNSUBSCRIBE_SALT = "notifications-unsubscribe"


def get_preferences(user: User) -> dict[str, Any]:
    return {
        "mode": user.notify_mode.value,
        "min_score": user.notify_min_score,
        "email": user.notify_email,
        "webhook": user.notify_webhook,
    }


def update_preferences(session: Session, user: User, data: Mapping[str, Any]) -> dict[str, Any]:
    """Change any of `mode`, `min_score` (0–1), `email`, `webhook`; all fields are checked first."""
    if not isinstance(data, Mapping):
        raise v.FieldError(_l("Expected an object."))
    errors = v.Collector()
    values: dict[str, Any] = {}
    if "mode" in data:
        mode = errors.check("mode", v.choice, data["mode"], MODES,
                            _l("Choose instant, daily, weekly or off."))
        if mode:
            values["notify_mode"] = NotifyMode(mode)
    if "min_score" in data:
        score = errors.check("min_score", v.number, data["min_score"], minimum=0, maximum=1)
        if score is not None:
            values["notify_min_score"] = score
    for field in ("email", "webhook"):
        if field in data:
            flag = errors.check(field, v.boolean, data[field])
            if flag is not None:
                values[f"notify_{field}"] = flag
    errors.raise_if_any()
    for field, value in values.items():
        setattr(user, field, value)
    session.flush()
    return get_preferences(user)


def unsubscribe_token(user: User, secret_key: str) -> str:
    """A link token that stops a user's e-mails without signing in (List-Unsubscribe)."""
    return str(URLSafeSerializer(secret_key, salt=UNSUBSCRIBE_SALT).dumps({"u": user.id, "e": user.email}))


def user_for_token(session: Session, token: str, secret_key: str) -> User | None:
    try:
        data = URLSafeSerializer(secret_key, salt=UNSUBSCRIBE_SALT).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    user = session.get(User, data.get("u"))
    # A token stops working once the address changes: it was sent to the old one.
    return user if user is not None and user.email == data.get("e") else None


def unsubscribe(session: Session, user: User) -> None:
    """Stop e-mails (in-app notices go on)."""
    user.notify_email = False
    session.flush()
