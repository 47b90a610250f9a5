"""The relay publishes committed outbox rows, best effort: a dead broker never fails the request."""

from __future__ import annotations

import time
from typing import Any

import pytest

from matchmaking import celery as mm_celery
from matchmaking.services import outbox


@pytest.fixture(autouse=True)
def _closed_breaker() -> Any:
    mm_celery.reset_breaker()
    yield
    mm_celery.reset_breaker()


def test_rows_are_published_after_commit_not_before(wsession: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[list[tuple[int, str]]] = []
    monkeypatch.setattr(mm_celery, "publish", lambda app, rows: sent.append(rows) or len(rows))
    event = outbox.emit(wsession, "listing.changed", {"listing_id": 1}, "listing.changed:1:x")
    assert sent == []
    wsession.commit()
    assert sent == [[(event.id, "listing.changed")]]


def test_rolled_back_rows_are_not_published(wsession: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[Any] = []
    monkeypatch.setattr(mm_celery, "publish", lambda app, rows: sent.append(rows) or len(rows))
    outbox.emit(wsession, "listing.changed", {"listing_id": 1}, "listing.changed:1:y")
    wsession.rollback()
    wsession.commit()
    assert sent == []


def test_a_dead_broker_costs_the_request_nothing(app: Any) -> None:
    from celery import Celery

    dead = Celery("dead", broker=f"redis://127.0.0.1:{_closed_port()}/0")
    dead.conf.broker_transport_options = {"socket_connect_timeout": 1}
    started = time.monotonic()
    assert mm_celery.publish(dead, [(1, "listing.changed"), (2, "listing.changed")]) == 0
    assert mm_celery.publish(dead, [(3, "listing.changed")]) == 0  # breaker open: not even tried
    assert time.monotonic() - started < 5


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_healthz_reports_database_and_broker(client: Any, app: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["database"] == "ok" and response.json["broker"] == "ok"
    assert response.json["version"]


def test_healthz_says_broker_down_and_still_answers_200(client: Any, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    celery_app = app.extensions["celery"]
    monkeypatch.setattr(celery_app.conf, "broker_url", f"redis://127.0.0.1:{_closed_port()}/0")
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["broker"] == "down"


def test_celery_settings_suit_idempotent_tasks(app: Any) -> None:
    conf = app.extensions["celery"].conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_cancel_long_running_tasks_on_connection_loss
    settings = mm_celery.celery_settings(app.config | {"REDIS_URL": "redis://x:6379/0", "TESTING": False}, "/tmp")
    assert settings["broker_transport_options"]["visibility_timeout"] > settings["task_time_limit"]
    assert app.config["OUTBOX_LEASE_SECONDS"] > settings["task_time_limit"]


def test_embedded_broker_sits_beside_a_sqlite_database(app: Any) -> None:
    url = mm_celery.broker_url({"SQLALCHEMY_DATABASE_URI": "sqlite:////data/mm.sqlite3"}, "/inst")
    assert url == "mmsqla+sqlite:////data/mm.broker.sqlite3"
    url = mm_celery.broker_url({"SQLALCHEMY_DATABASE_URI": "postgresql://db/mm"}, "/inst")
    assert url == "mmsqla+sqlite:////inst/broker.sqlite3"
    assert mm_celery.broker_url({"REDIS_URL": "redis://r:6379/0"}, "/inst") == "redis://r:6379/0"
