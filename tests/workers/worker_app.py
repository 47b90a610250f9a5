"""The worker of the end-to-end tests: the real Celery app, with the stand-in engine unless
MM_REAL_ENGINE=1 (the tests count deliveries, and identical titles make the expected pairs plain).

MM_IMPORT_GREEDY_MB=N makes each import first ask for N MB at once, as a runaway reading would:
a worker already holds free memory of its own, so a real file small enough to test with may fit
within a small limit."""

import os
from typing import Any

from matchmaking.services import import_jobs, notifications
from tests.workers.fake_engine import fake_refresh

if os.environ.get("MM_REAL_ENGINE") != "1":
    notifications.refresh_matches = fake_refresh  # type: ignore[assignment]

if os.environ.get("MM_IMPORT_GREEDY_MB"):
    _import_listings = import_jobs.import_listings

    def _greedy_import(*args: Any, **kwargs: Any) -> Any:
        hoard = bytearray(int(os.environ["MM_IMPORT_GREEDY_MB"]) * 1024 * 1024)
        try:
            return _import_listings(*args, **kwargs)
        finally:
            del hoard

    import_jobs.import_listings = _greedy_import  # type: ignore[assignment]

from workers.celery_app import celery_app, flask_app  # noqa: E402,F401
