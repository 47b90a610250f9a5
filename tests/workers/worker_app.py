"""The worker of the end-to-end tests: the real Celery app, with the stand-in engine unless
MM_REAL_ENGINE=1 (the tests count deliveries, and identical titles make the expected pairs plain)."""

import os

from matchmaking.services import notifications
from tests.workers.fake_engine import fake_refresh

if os.environ.get("MM_REAL_ENGINE") != "1":
    notifications.refresh_matches = fake_refresh  # type: ignore[assignment]

from workers.celery_app import celery_app, flask_app  # noqa: E402,F401
