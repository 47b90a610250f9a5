"""The embedded broker keeps no consumed message: its transport deletes what it hands out, and a
periodic cleanup removes what kombu's own transport (or an older version) left behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from sqlalchemy import create_engine, text

from matchmaking import celery as mm_celery

# kombu's models use a loader strategy SQLAlchemy 2.1 deprecates; not ours to change.


def _rows(path: Path) -> tuple[int, int]:
    """(visible, consumed) messages in a broker file."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            visible = conn.execute(text("SELECT count(*) FROM kombu_message WHERE visible = 1")).scalar()
            hidden = conn.execute(text("SELECT count(*) FROM kombu_message WHERE visible = 0")).scalar()
            return int(visible or 0), int(hidden or 0)
    finally:
        engine.dispose()


def _publish_and_consume(url: str, sent: int, taken: int) -> list[Any]:
    got = []
    with Connection(url) as conn:
        queue = conn.SimpleQueue("mm-test")
        for i in range(sent):
            queue.put({"n": i})
        for _ in range(taken):
            message = queue.get(timeout=5)
            got.append(message.payload)
            message.ack()
        queue.close()
    return got


def test_the_embedded_transport_deletes_what_it_hands_out(tmp_path: Path) -> None:
    path = tmp_path / "broker.sqlite3"
    got = _publish_and_consume(f"{mm_celery.EMBEDDED_SCHEME}+sqlite:///{path}", sent=5, taken=3)
    assert [g["n"] for g in got] == [0, 1, 2]  # in order, each once
    assert _rows(path) == (2, 0)  # the two not yet taken wait; nothing consumed is kept
    assert [g["n"] for g in _publish_and_consume(f"{mm_celery.EMBEDDED_SCHEME}+sqlite:///{path}", 0, 2)] == [3, 4]
    assert _rows(path) == (0, 0)


def test_the_cleanup_removes_what_kombus_transport_keeps(tmp_path: Path) -> None:
    path = tmp_path / "broker.sqlite3"
    _publish_and_consume(f"sqla+sqlite:///{path}", sent=400, taken=399)
    assert _rows(path) == (1, 399)  # kombu's own transport only hides consumed messages
    size = path.stat().st_size
    done = mm_celery.cleanup_embedded_broker(f"sqla+sqlite:///{path}")
    assert done["deleted"] == 399 and _rows(path) == (1, 0)
    assert mm_celery.cleanup_embedded_broker(f"{mm_celery.EMBEDDED_SCHEME}+sqlite:///{path}")["deleted"] == 0
    assert path.stat().st_size <= size


def test_the_cleanup_compacts_a_mostly_empty_file(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "broker.sqlite3"
    _publish_and_consume(f"sqla+sqlite:///{path}", sent=300, taken=300)
    monkeypatch.setattr(mm_celery, "VACUUM_MIN_FREE_PAGES", 1)
    size = path.stat().st_size
    assert mm_celery.cleanup_embedded_broker(f"sqla+sqlite:///{path}") == {"deleted": 300, "vacuumed": 1}
    assert path.stat().st_size < size


def test_the_cleanup_leaves_other_brokers_and_new_files_alone(tmp_path: Path) -> None:
    assert mm_celery.cleanup_embedded_broker("redis://127.0.0.1:1/0") == {"deleted": 0, "vacuumed": 0}
    fresh = tmp_path / "new.sqlite3"
    assert mm_celery.cleanup_embedded_broker(f"sqla+sqlite:///{fresh}") == {"deleted": 0, "vacuumed": 0}


def test_beat_runs_the_cleanup_for_the_embedded_broker_only(app: Any) -> None:
    embedded = mm_celery.celery_settings(app.config | {"TESTING": False, "CELERY_BROKER_URL": None,
                                                       "REDIS_URL": None}, "/tmp")
    assert embedded["broker_url"].startswith(mm_celery.EMBEDDED_SCHEME + "+")
    entry = embedded["beat_schedule"]["broker-cleanup"]
    assert entry["task"] == "matchmaking.cleanup_broker" and entry["schedule"].total_seconds() == 3600
    redis = mm_celery.celery_settings(app.config | {"REDIS_URL": "redis://x:6379/0", "TESTING": False}, "/tmp")
    assert "broker-cleanup" not in redis["beat_schedule"]


def test_the_cleanup_task_runs_in_the_worker(app: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from workers import tasks

    path = tmp_path / "broker.sqlite3"
    _publish_and_consume(f"sqla+sqlite:///{path}", sent=3, taken=0)
    # Consumed as kombu's own transport leaves them: hidden, not deleted.
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE kombu_message SET visible = 0"))
    engine.dispose()
    assert _rows(path) == (0, 3)
    celery_app = app.extensions["celery"]
    monkeypatch.setattr(celery_app.conf, "broker_url", f"sqla+sqlite:///{path}")
    # This app's own task: the shared one resolves to whichever app a later test created last.
    task = celery_app.tasks[tasks.cleanup_broker.name]
    assert task() == 3
    assert _rows(path) == (0, 0)


def test_losing_the_race_to_create_a_queue_keeps_the_channel(tmp_path: Path, monkeypatch: Any) -> None:
    """The worker and beat start on a fresh file and both create the queue: the loser takes the
    winner's row and publishes on (kombu's own channel breaks for good)."""
    from kombu.transport.sqlalchemy import Channel
    from sqlalchemy.exc import IntegrityError

    url = f"{mm_celery.EMBEDDED_SCHEME}+sqlite:///{tmp_path / 'broker.sqlite3'}"
    _publish_and_consume(url, sent=1, taken=1)  # the winner: the queue exists
    real = Channel._get_or_create
    lost = []

    def racing(self: Any, queue: str) -> Any:
        if not lost:  # as if the row appeared between this process's look and its insert
            lost.append(queue)
            raise IntegrityError("INSERT INTO kombu_queue", {}, Exception("UNIQUE constraint failed"))
        return real(self, queue)

    monkeypatch.setattr(Channel, "_get_or_create", racing)
    got = _publish_and_consume(url, sent=2, taken=2)
    assert lost == ["mm-test"] and [g["n"] for g in got] == [0, 1]


def test_a_channel_closed_after_redis_went_away_does_not_end_the_worker() -> None:
    # kombu puts a channel's unacknowledged messages back when it closes; once the connection is
    # gone that fails with AttributeError, which Celery treats as unrecoverable (the worker exits).
    connection = Connection("redis://127.0.0.1:6379/15", transport=mm_celery.RedisTransport)
    channel = connection.channel()
    try:
        channel.qos._delivered["tag"] = object()
        channel._pool = None
        channel.connection.client = None  # what kombu leaves once Redis dropped the connection
        assert channel.qos.restore_unacked() is None
        channel.connection.client = connection
        with pytest.raises(AttributeError):  # any other AttributeError is still worth seeing
            channel.qos.restore_unacked(client=object())
    finally:
        channel.qos._delivered.clear()  # nothing for kombu's exit hook to put back
        connection.release()


def test_a_task_finishing_after_its_channel_closed_leaves_its_message_for_redelivery() -> None:
    # A task that ends while Redis is away is acknowledged on a channel kombu has since closed
    # (its connection is None): the worker must go on, and the message stay owed, not vanish.
    connection = Connection("redis://127.0.0.1:6379/15", transport=mm_celery.RedisTransport)
    try:
        queue = connection.SimpleQueue("mm-late-ack")
        queue.clear()
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        channel = message.channel
        unacked = channel.unacked_key
        client, owner = channel.client, channel.connection
        assert client.hexists(unacked, message.delivery_tag)
        channel.connection = None  # what closing the channel leaves once the connection is gone
        message.ack()  # no AttributeError
        assert client.hexists(unacked, message.delivery_tag)  # still owed: put back after the timeout
        with pytest.raises(Exception, match="already acknowledged"):
            message.ack()
        channel.connection = owner
        client.delete(unacked, channel.unacked_index_key)
        channel.qos._delivered.clear()  # nothing for the channel's close to put back
        queue.close()
    finally:
        connection.release()
