"""Application factory: config → extensions → blueprints."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, has_request_context, request, session
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from . import config
from .extensions import babel, csrf, db, limiter, login_manager
from .models import PUBLIC_ID_ALPHABET, PUBLIC_ID_LENGTH


class PublicIdConverter(BaseConverter):
    """`<public_id:listing_id>`: a listing's or a match's public id; anything else, the old
    integer ids included, matches no route (a plain 404)."""

    regex = f"[{PUBLIC_ID_ALPHABET}]{{{PUBLIC_ID_LENGTH}}}"


def select_locale() -> str | None:
    """?lang= remembered in the session, else the browser's preference, French by default."""
    languages = ["fr", "en"]
    if not has_request_context():
        return None  # CLI and workers: the default locale (French)
    wanted = request.args.get("lang")
    if wanted in languages:
        session["lang"] = wanted
        return wanted
    if session.get("lang") in languages:
        return str(session["lang"])
    return request.accept_languages.best_match(languages) or "fr"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    # No app-wide /static route: each blueprint serves its own assets.
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(config.defaults(app.instance_path))
    app.config.from_prefixed_env("MATCHMAKING")
    if test_config:
        app.config.update(test_config)
    config.settle(app.config, app.instance_path, debug=app.debug)

    # Behind TRUSTED_PROXIES reverse proxies, the client's address and scheme are the ones the
    # nearest of them saw: rate limits and sign-in waits then count per real client.
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]

    # Rate limits count in Redis when there is one, else in this process.
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")

    db.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    app.url_map.converters["public_id"] = PublicIdConverter

    from .web import bp as web_bp

    app.register_blueprint(web_bp)

    from .api import bp as api_bp

    app.register_blueprint(api_bp)

    from .web.health import bp as health_bp
    from .web.mailbox import bp as mailbox_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(mailbox_bp)

    from .staff import bp as staff_bp

    app.register_blueprint(staff_bp)

    from .celery import celery_init_app

    celery_init_app(app)

    from . import cli

    cli.register(app)
    return app


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # SQLite ignores foreign keys unless asked, and locks too eagerly without WAL.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()
