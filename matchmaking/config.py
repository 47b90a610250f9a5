"""Configuration: typed defaults, overridden by environment variables only.

Read by create_app() at start-up, never at import time.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any


def database_url(raw: str | None, instance_path: str) -> str:
    """The SQLAlchemy URL: DATABASE_URL when set, else a SQLite file under instance/."""
    if not raw:
        return "sqlite:///" + str(Path(instance_path) / "matchmaking.sqlite3")
    # Hosting platforms hand out postgres:// URLs; we drive PostgreSQL with psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def secret_key(instance_path: str) -> str:
    """SECRET_KEY from the environment, else one generated once and kept under instance/."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def defaults(instance_path: str) -> dict[str, Any]:
    env = os.environ
    return {
        "SECRET_KEY": secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url(env.get("DATABASE_URL"), instance_path),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": env.get("REDIS_URL") or None,
        "BABEL_DEFAULT_LOCALE": "fr",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Paris",
        "LANGUAGES": ["fr", "en"],
        "BASE_URL": env.get("BASE_URL", "http://127.0.0.1:5000"),
        "MAIL_FROM": env.get("MAIL_FROM", "Mont des Avaloirs - Matières <ne-pas-repondre@example.fr>"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "MAX_CONTENT_LENGTH": 12 * 1024 * 1024,
        "JSON_SORT_KEYS": False,
        # Web app: the map, sessions, forms and rate limits.
        "MAP_TILE_URL": env.get("MAP_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png"),
        "MAP_TILE_ATTRIBUTION": env.get(
            "MAP_TILE_ATTRIBUTION", '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>'
        ),
        "SESSION_COOKIE_SECURE": env.get("BASE_URL", "").startswith("https://"),
        "LOGIN_COOKIE_NAME": "mm_session",
        "LOGIN_SESSION_DAYS": 30,  # a browser stays signed in this long at most
        "LOGIN_IDLE_DAYS": 14,  # ... and this long without a visit
        "PASSWORD_RESET_HOURS": 2,
        "WTF_CSRF_CHECK_DEFAULT": False,  # checked by the web app on every request outside /api
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session: no expired forms on a slow phone
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,  # Redis down: count in memory rather than fail
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_SIGN_IN": "10 per minute;60 per hour",
        "RATELIMIT_REGISTER": "5 per minute;30 per hour",
        "IMPORT_MAX_BYTES": 10 * 1024 * 1024,
        "IMPORT_MAX_ROWS": 20_000,
    }
