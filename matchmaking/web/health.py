"""GET /healthz: is the database reachable, is the broker? The web app keeps serving either way."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, current_app
from sqlalchemy import text

from ..celery import broker_ok
from ..extensions import db

bp = Blueprint("health", __name__)


def _version() -> str:
    try:
        return version("matchmaking")
    except PackageNotFoundError:
        return "unknown"


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int]:
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # noqa: BLE001 - any failure means "down"
        database = "down"
        db.session.rollback()
    celery_app = current_app.extensions.get("celery")
    broker = "ok" if celery_app is not None and broker_ok(celery_app) else "down"
    # 200 while the database answers: a broker outage delays notifications, it loses none.
    return {"database": database, "broker": broker, "version": _version()}, 200 if database == "ok" else 503
