"""Helpers for page tests: CSRF tokens read from the page, signing in through the form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete

from matchmaking.extensions import limiter
from matchmaking.models import MailboxMessage, Notification, PasswordReset, UserSession

PASSWORD = "correct horse battery"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def _fresh_limits_and_rows(app: Any) -> Iterator[None]:
    # Rate limits count per test, and rows the shared fixture does not know about go too.
    with app.app_context():
        limiter.reset()
    yield
    with app.app_context():
        from matchmaking.extensions import db

        for model in (MailboxMessage, Notification, PasswordReset, UserSession):
            db.session.execute(delete(model))
        db.session.commit()


def token(client: Any, url: str) -> str:
    page = client.get(url)
    found = TOKEN_RE.search(page.get_data(as_text=True))
    assert found, f"no CSRF token on {url} ({page.status_code})"
    return found.group(1)


def post(client: Any, url: str, data: dict[str, Any] | None = None, *, form_url: str | None = None,
         **kwargs: Any) -> Any:
    """Submit a form as a browser would: with the token of the page that shows it."""
    payload = dict(data or {})
    payload["csrf_token"] = token(client, form_url or url)
    return client.post(url, data=payload, **kwargs)


def sign_in(client: Any, user: Any, password: str = PASSWORD) -> Any:
    response = post(client, "/sign-in", {"email": user.email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


def text(response: Any) -> str:
    return response.get_data(as_text=True)
