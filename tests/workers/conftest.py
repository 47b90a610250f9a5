"""Fixtures for the worker tests: a session that also clears notifications, mailbox and webhooks,
the stand-in engine, and two firms with a member each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete

from matchmaking.models import MailboxMessage, Notification, OutboxEvent, WebhookEndpoint
from matchmaking.services import notifications
from tests.factories import make_firm, make_user

from .fake_engine import fake_refresh


@pytest.fixture()
def wsession(session: Any) -> Iterator[Any]:
    yield session
    session.rollback()
    for model in (MailboxMessage, Notification, WebhookEndpoint, OutboxEvent):
        session.execute(delete(model))
    session.commit()


@pytest.fixture()
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifications, "refresh_matches", fake_refresh)


@pytest.fixture()
def firms(wsession: Any) -> dict[str, Any]:
    seller, buyer = make_firm(wsession, name="Scierie du Mont"), make_firm(wsession, name="Élevage des Coëvrons")
    return {
        "seller": seller,
        "buyer": buyer,
        "seller_user": make_user(wsession, seller, email="vente@scierie.example.fr", name="Anne"),
        "buyer_user": make_user(wsession, buyer, email="achat@elevage.example.fr", name="Bruno"),
    }
