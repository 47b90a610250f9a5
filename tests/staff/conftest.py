"""The demo territory with its history, in a database of its own (read-only tests share it), and
staff accounts signed in through the web form."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from matchmaking import migrate
from matchmaking.extensions import db
from matchmaking.services import demo_history, seeding
from tests.conftest import _postgres_database, make_app

PASSWORD = "correct horse battery"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An app over its own database: reference data, the fictitious demo territory, its 18 months of
    history. Tests using it only read (or clean up what they add)."""
    cleanup = None
    if os.environ.get("TEST_DATABASE_URL"):
        cleanup = _postgres_database()
        url = next(cleanup)
    else:
        url = "sqlite:///" + str(tmp_path_factory.mktemp("demo") / "demo.sqlite3")
    app = make_app(url)
    with app.app_context():
        migrate.upgrade(db.engine)
        seeding.load_reference(db.session)
        seeding.load_demo(db.session)
        demo_history.load_history(db.session, today=datetime.now(UTC).date())
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if cleanup is not None:
        next(cleanup, None)


def token(client: Any, url: str) -> str:
    page = client.get(url)
    found = TOKEN_RE.search(page.get_data(as_text=True))
    assert found, f"no CSRF token on {url} ({page.status_code})"
    return found.group(1)


def post(client: Any, url: str, data: dict[str, Any] | None = None, *, form_url: str | None = None) -> Any:
    payload = dict(data or {})
    payload["csrf_token"] = token(client, form_url or url)
    return client.post(url, data=payload)


def sign_in(client: Any, email: str, password: str = PASSWORD) -> None:
    response = post(client, "/sign-in", {"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
