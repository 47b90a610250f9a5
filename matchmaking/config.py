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
    """SECRET_KEY from the environment, else one generated once and kept under instance/ (the
    embedded mode only: create_app() refuses to start a server database without a key)."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


class MissingSecretKey(RuntimeError):
    pass


def settle(config: dict[str, Any], instance_path: str, *, debug: bool) -> None:
    """What depends on the final settings, once the environment and the caller had their say."""
    if config.get("SESSION_COOKIE_SECURE") is None:
        config["SESSION_COOKIE_SECURE"] = str(config.get("BASE_URL") or "").startswith("https://")
    if not config.get("SECRET_KEY"):
        # A key generated into instance/ suits one machine's SQLite; a server database means a
        # deployment, whose processes must share one key that survives a new release.
        embedded = str(config.get("SQLALCHEMY_DATABASE_URI") or "").startswith("sqlite")
        if not (embedded or debug or config.get("TESTING")):
            raise MissingSecretKey(
                "SECRET_KEY is not set. A deployment on a server database needs one, the same for every "
                "web and worker process, e.g.: export SECRET_KEY=$(python -c "
                "'import secrets; print(secrets.token_hex(32))')"
            )
        config["SECRET_KEY"] = secret_key(instance_path)


def defaults(instance_path: str) -> dict[str, Any]:
    env = os.environ
    return {
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,  # unset: see create_app()
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
        "SESSION_COOKIE_SECURE": None,  # unset: true when BASE_URL (however it is set) is https://
        # Reverse proxies in front of the app (TLS front end, load balancer) whose X-Forwarded-For and
        # X-Forwarded-Proto are believed; 0 believes none, and a client could forge its address.
        "TRUSTED_PROXIES": _int(env.get("TRUSTED_PROXIES"), 0),
        "LOGIN_COOKIE_NAME": "mm_session",
        "LOGIN_SESSION_DAYS": 30,  # a browser stays signed in this long at most
        "LOGIN_IDLE_DAYS": 14,  # ... and this long without a visit
        "API_TOKEN_IDLE_DAYS": 180,  # an API token unused this long stops working
        "PASSWORD_RESET_HOURS": 2,
        "EMAIL_CONFIRM_HOURS": 48,  # how long the link e-mailed at registration confirms the address
        "WTF_CSRF_CHECK_DEFAULT": False,  # checked by the web app on every request outside /api
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session: no expired forms on a slow phone
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,  # Redis down: count in memory rather than fail
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_HEADERS_ENABLED": True,
        # Wrong passwords per address, whatever the accounts tried (right ones are not counted).
        "RATELIMIT_SIGN_IN": "10 per minute;60 per hour",
        # Per account and address (services/sign_in.py): after 5 wrong passwords in a row, wait 30 s,
        # doubling up to 15 min; an account guessed at 20 times from anywhere gives addresses it was
        # never signed in from one free try each. The owner elsewhere is never held up.
        "SIGN_IN_FREE_FAILURES": 5,
        "SIGN_IN_FIRST_WAIT_SECONDS": 30,
        "SIGN_IN_MAX_WAIT_SECONDS": 900,
        "SIGN_IN_ACCOUNT_ALARM": 20,
        "SIGN_IN_FORGET_HOURS": 24,
        "SIGN_IN_KNOWN_DAYS": 30,
        "RATELIMIT_REGISTER": "5 per minute;30 per hour",
        # Imports: the bounds are services.import_bounds.ImportLimits; IMPORT_MAX_ROWS, IMPORT_MAX_BYTES,
        # IMPORT_MAX_LINES, IMPORT_MAX_COLUMNS ... (upper-case field names) override them.
        # An anonymous listing's place is an area at least this many firms have sites in.
        "ANONYMITY_K": 5,
        # Statistics: the (n, k) dominance rule. A figure of tonnes is "secret statistique" when its
        # largest firm makes more than this share of it, or its two largest firms together more than
        # the second (services/stats.py, confidentiality).
        "STATS_DOMINANCE_ONE": 0.85,
        "STATS_DOMINANCE_TWO": 0.90,
    } | worker_defaults(instance_path)


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def worker_defaults(instance_path: str) -> dict[str, Any]:
    """Background work: broker, outbox timing, SMTP and webhooks."""
    env = os.environ
    return {
        # Broker: CELERY_BROKER_URL, else REDIS_URL, else the embedded SQLite broker under instance/.
        "CELERY_BROKER_URL": env.get("CELERY_BROKER_URL") or None,
        # Unset: a SQLite file beside a SQLite database (each database its own queue), else under instance/.
        "CELERY_EMBEDDED_BROKER": env.get("CELERY_EMBEDDED_BROKER") or None,
        "CELERY": {},  # any other Celery setting, applied last
        "WORKER_CONCURRENCY": _int(env.get("WORKER_CONCURRENCY"), 2),
        # A task is killed after TASK_TIME_LIMIT s; its outbox lease and the broker's visibility
        # timeout must outlast it, or a second worker would start the same work.
        "TASK_TIME_LIMIT": 300,
        "TASK_SOFT_TIME_LIMIT": 270,
        "BROKER_VISIBILITY_TIMEOUT": 3600,
        "OUTBOX_LEASE_SECONDS": 360,
        "OUTBOX_SWEEP_SECONDS": 30,  # how often beat re-publishes what is not done
        "OUTBOX_SWEEP_GRACE_SECONDS": 10,  # a fresh row was relayed after commit: leave it that long
        "OUTBOX_REPUBLISH_SECONDS": 600,  # a published row not taken by then is published again
        "OUTBOX_RETRY_BASE_SECONDS": 30,
        "OUTBOX_RETRY_MAX_SECONDS": 3600,
        "OUTBOX_MAX_ATTEMPTS": 8,
        "REMATCH_GROUP_SIZE": 200,
        "DIGEST_HOUR": 7,  # Europe/Paris
        "MATCH_URL_PATH": "/matches/{id}",  # link to a match in e-mails and webhooks
        # SMTP: unset host = embedded mailbox (MailboxMessage rows shown at /boite-mail).
        "SMTP_HOST": env.get("SMTP_HOST") or None,
        "SMTP_PORT": _int(env.get("SMTP_PORT"), 587),
        "SMTP_USER": env.get("SMTP_USER") or None,
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD") or None,
        "SMTP_TLS": env.get("SMTP_TLS", "starttls"),  # starttls, ssl or none
        "SMTP_TIMEOUT": 30,
        # Webhooks: private, loopback and link-local targets are refused unless allowed (tests, intranets).
        "WEBHOOK_ALLOW_PRIVATE": env.get("WEBHOOK_ALLOW_PRIVATE", "").lower() in ("1", "true", "yes"),
        "WEBHOOK_TIMEOUT": 10,
    }
