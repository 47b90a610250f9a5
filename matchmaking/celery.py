"""Celery wired the Flask way, and the relay that hands committed outbox rows to it.

The broker is Redis in production (REDIS_URL), else an embedded SQLite file under instance/
(kombu's SQLAlchemy transport), so one machine with nothing installed runs a real worker.
The database stays the record: a message lost by the broker is published again by the sweep.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from json import loads
from pathlib import Path
from queue import Empty
from typing import Any

from celery import Celery, Task
from celery.schedules import crontab
from flask import Flask, current_app, has_app_context
from flask_sqlalchemy.session import Session as FlaskSession
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis
from kombu.transport.sqlalchemy import Channel as SQLAlchemyChannel
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport
from kombu.utils.encoding import bytes_to_str
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from .models import OutboxEvent

log = logging.getLogger(__name__)

EMBEDDED_SCHEME = "mmsqla"
PUBLISHED = "matchmaking.outbox_new"  # session.info key: rows flushed in the current transaction


class EmbeddedChannel(SQLAlchemyChannel):
    """kombu's SQLAlchemy channel, except that a message handed to a worker is deleted, not just
    hidden: kombu keeps every consumed message (visible = false) forever, so its file only grows.

    Nothing is lost that was not lost before: a hidden message was never shown again either (an
    unacknowledged one is put back as a new row when its channel closes, as before), and a message
    lost with a killed worker is published again by the outbox sweep.
    """

    def _get_or_create(self, queue: str) -> Any:
        """kombu's, except that losing the race to create a queue (a fresh file, the worker and beat
        starting together) takes the winner's row; kombu lets the IntegrityError break the channel,
        and beat then never publishes again."""
        try:
            return super()._get_or_create(queue)  # type: ignore[no-untyped-call]
        except IntegrityError:
            self.session.rollback()
            found = self.session.query(self.queue_cls).filter(self.queue_cls.name == queue).first()
            if found is None:
                raise
            return found

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        found = self._get_or_create(queue)
        if self.session.bind.name == "sqlite":
            self.session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            message = (
                self.session.query(self.message_cls)
                .with_for_update()
                .filter(self.message_cls.queue_id == found.id)
                .filter(self.message_cls.visible.is_not(False))
                .order_by(self.message_cls.sent_at, self.message_cls.id)
                .limit(1)
                .first()
            )
            if message is None:
                raise Empty()
            payload = loads(bytes_to_str(message.payload))  # type: ignore[no-untyped-call]
            self.session.delete(message)
            return payload
        finally:
            self.session.commit()


class EmbeddedTransport(SQLAlchemyTransport):
    """kombu's SQLAlchemy transport, polled every 50 ms instead of every second, whose consumed
    messages are deleted (EmbeddedChannel).

    The worker also waits one interval after each task before taking the next, so the interval
    bounds throughput; an idle poll is one small transaction on the broker's own SQLite file.
    """

    Channel = EmbeddedChannel
    polling_interval = 0.05


BROKER_CLEANUP_SECONDS = 3600.0
VACUUM_MIN_FREE_PAGES = 256  # 1 MiB of 4 KiB pages: below that, rewriting the file is not worth it


def cleanup_embedded_broker(url: str) -> dict[str, int]:
    """Delete consumed messages from an SQLite/SQL broker (left by kombu's own transport, or by an
    older version of this one) and give the space back when over half the file is free.

    Returns what was done: {"deleted": rows, "vacuumed": 0 or 1}. Safe while workers run: one
    short write transaction, and VACUUM waits for the broker's lock like any poll.
    """
    if not is_embedded(url):
        return {"deleted": 0, "vacuumed": 0}
    engine = create_engine(url.split("+", 1)[1], connect_args={"timeout": 30}
                           if url.split("+", 1)[1].startswith("sqlite") else {})
    try:
        with engine.begin() as conn:
            if "kombu_message" not in _tables(conn):
                return {"deleted": 0, "vacuumed": 0}
            deleted = conn.execute(text("DELETE FROM kombu_message WHERE visible = :hidden"),
                                   {"hidden": False}).rowcount or 0
        vacuumed = 0
        if engine.dialect.name == "sqlite":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)
                free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)
                if free >= VACUUM_MIN_FREE_PAGES and free * 2 > pages:
                    conn.exec_driver_sql("VACUUM")
                    # In WAL mode (as the app's connections set it) the file shrinks at a checkpoint.
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                    vacuumed = 1
        return {"deleted": int(deleted), "vacuumed": vacuumed}
    finally:
        engine.dispose()


def _tables(conn: Any) -> set[str]:
    return set(inspect(conn).get_table_names())


TRANSPORT_ALIASES[EMBEDDED_SCHEME] = "matchmaking.celery:EmbeddedTransport"


class RedisQoS(kombu_redis.QoS):
    """kombu's, except that Redis going away while a task runs does not end the worker.

    kombu closes the channel after its connection is gone; putting the task's message back, or
    acknowledging a task that finished meanwhile, then fails on that missing connection
    (AttributeError), Celery calls it an unrecoverable error and the worker exits. The message is
    still in Redis's unacknowledged set, which kombu puts back after the visibility timeout: tasks
    are idempotent (a delivered outbox row is not sent again), so running it twice is harmless."""

    def _connection_gone(self) -> bool:
        return getattr(self.channel.connection, "client", None) is None

    def restore_unacked(self, client: Any = None) -> Any:
        try:
            return super().restore_unacked(client)  # type: ignore[no-untyped-call]
        except AttributeError:
            if not self._connection_gone():
                raise
            log.warning("broker connection gone: %s unacknowledged message(s) left for redelivery",
                        len(self._delivered))
            return None

    def ack(self, delivery_tag: str) -> None:
        if self._connection_gone():
            log.warning("broker connection gone: message %s left for redelivery", delivery_tag)
            return
        super().ack(delivery_tag)  # type: ignore[no-untyped-call]

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if self._connection_gone():
            log.warning("broker connection gone: message %s left for redelivery", delivery_tag)
            return
        super().reject(delivery_tag, requeue)  # type: ignore[no-untyped-call]


class RedisChannel(kombu_redis.Channel):
    QoS = RedisQoS


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel


TRANSPORT_ALIASES["redis"] = TRANSPORT_ALIASES["rediss"] = "matchmaking.celery:RedisTransport"


def broker_url(config: Any, instance_path: str) -> str:
    url = config.get("CELERY_BROKER_URL") or config.get("REDIS_URL")
    if url:
        return str(url)
    if config.get("TESTING"):
        return "memory://"  # unit tests: publishing is a no-op, nothing is written under instance/
    return EMBEDDED_SCHEME + "+" + embedded_broker_url(config, instance_path).split("+", 1)[1]


def embedded_broker_url(config: Any, instance_path: str) -> str:
    """The SQLite broker file: configured, else beside a SQLite database, else under instance/.
    A queue belongs to one database: its messages name that database's outbox rows."""
    if config.get("CELERY_EMBEDDED_BROKER"):
        return str(config["CELERY_EMBEDDED_BROKER"])
    database = make_url(str(config.get("SQLALCHEMY_DATABASE_URI") or ""))
    if database.get_backend_name() == "sqlite" and database.database not in (None, "", ":memory:"):
        path = Path(str(database.database))
        return "sqla+sqlite:///" + str(path.with_name(path.stem + ".broker.sqlite3"))
    return "sqla+sqlite:///" + str(Path(instance_path) / "broker.sqlite3")


def is_embedded(url: str) -> bool:
    return url.startswith((EMBEDDED_SCHEME + "+", "sqla+", "sqlalchemy+"))


def celery_settings(config: Any, instance_path: str) -> dict[str, Any]:
    url = broker_url(config, instance_path)
    hard = int(config["TASK_TIME_LIMIT"])
    transport: dict[str, Any]
    if url.startswith(("redis://", "rediss://", "unix://")):
        # Unacked messages come back after visibility_timeout: it must outlast the longest task.
        transport = {"visibility_timeout": max(int(config["BROKER_VISIBILITY_TIMEOUT"]), hard * 2),
                     "socket_connect_timeout": 2}
    elif is_embedded(url):
        transport = {"connect_args": {"timeout": 30}}  # create_engine() keywords: SQLite waits for its lock
    else:
        transport = {}
    digest_hour = int(config["DIGEST_HOUR"])
    settings: dict[str, Any] = {
        "broker_url": url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # a worker waits for the broker, however long it is away
        "task_ignore_result": True,  # the outbox row is the result
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": config.get("BABEL_DEFAULT_TIMEZONE", "Europe/Paris"),
        # Tasks are idempotent, so a task is acknowledged only once done and redelivered if its process dies.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_time_limit": hard,
        "task_soft_time_limit": int(config["TASK_SOFT_TIME_LIMIT"]),
        "worker_concurrency": int(config["WORKER_CONCURRENCY"]),
        "worker_hijack_root_logger": False,
        "imports": ("workers.tasks",),
        "beat_schedule": {
            "outbox-sweep": {"task": "matchmaking.sweep_outbox",
                             "schedule": timedelta(seconds=float(config["OUTBOX_SWEEP_SECONDS"]))},
            "daily-digest": {"task": "matchmaking.daily_digest", "schedule": crontab(hour=digest_hour, minute=0)},
            "weekly-digest": {"task": "matchmaking.weekly_digest",
                              "schedule": crontab(hour=digest_hour, minute=5, day_of_week=1)},
            "expire-listings": {"task": "matchmaking.expire_listings", "schedule": crontab(hour=2, minute=0)},
            "full-rematch": {"task": "matchmaking.rematch_all", "schedule": crontab(hour=3, minute=30, day_of_week=0)},
        },
    }
    if is_embedded(url):
        # kombu's SQL transport keeps consumed messages; ours deletes them, this catches the rest.
        settings["beat_schedule"]["broker-cleanup"] = {
            "task": "matchmaking.cleanup_broker",
            "schedule": timedelta(seconds=float(config.get("BROKER_CLEANUP_SECONDS") or BROKER_CLEANUP_SECONDS))}
    settings.update(config.get("CELERY") or {})
    return settings


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(celery_settings(app.config, app.instance_path))
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    install_relay()
    return celery_app


# --- the relay: publish after commit, best effort ------------------------------------------------

_breaker = threading.Lock()
_broker_down_until = 0.0
BREAKER_SECONDS = 5.0  # after a failed publish, leave the broker alone this long (the sweep catches up)


def _collect(session: Any, flush_context: Any) -> None:
    new = [(o.id, o.kind) for o in session.new if isinstance(o, OutboxEvent)]
    if new:
        session.info.setdefault(PUBLISHED, []).extend(new)


def _forget(session: Any, *args: Any) -> None:
    session.info.pop(PUBLISHED, None)


RELAY_MAX_PER_COMMIT = 100  # a bulk import leaves the rest to the sweep instead of holding its request


def _after_commit(session: Any) -> None:
    rows = session.info.pop(PUBLISHED, None)
    if rows and has_app_context():
        celery_app = current_app.extensions.get("celery")
        if celery_app is not None:
            publish(celery_app, rows[:RELAY_MAX_PER_COMMIT])


def publish(celery_app: Celery, rows: list[tuple[int, str]]) -> int:
    """Send one message per outbox row (task id = row id). Never raises; returns how many went out."""
    global _broker_down_until
    from .services.relay import task_for

    if time.monotonic() < _broker_down_until:
        return 0
    sent = 0
    try:
        for event_id, kind in rows:
            celery_app.send_task(task_for(kind), args=[event_id], task_id=f"outbox-{event_id}",
                                 retry=True, retry_policy={"max_retries": 1, "interval_start": 0,
                                                           "interval_step": 0.2, "interval_max": 0.2})
            sent += 1
    except Exception as exc:  # noqa: BLE001 - the request has committed; the sweep publishes later
        with _breaker:
            _broker_down_until = time.monotonic() + BREAKER_SECONDS
        log.warning("broker unavailable, %s outbox row(s) left for the sweep: %s", len(rows) - sent, exc)
    return sent


def reset_breaker() -> None:
    global _broker_down_until
    _broker_down_until = 0.0


_installed = False


def install_relay() -> None:
    global _installed
    if _installed:
        return
    event.listen(FlaskSession, "after_flush", _collect)
    event.listen(FlaskSession, "after_commit", _after_commit)
    event.listen(FlaskSession, "after_rollback", _forget)
    _installed = True


# --- health ------------------------------------------------------------------------------------


def broker_ok(celery_app: Celery, timeout: float = 1.5) -> bool:
    """Can the broker be reached right now? Never raises, returns within about `timeout` seconds."""
    url = str(celery_app.conf.broker_url)
    try:
        if url.startswith(("redis://", "rediss://", "unix://")):
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
            try:
                return bool(client.ping())
            finally:
                client.close()
        if is_embedded(url):
            from sqlalchemy import create_engine, text

            engine = create_engine(url.split("+", 1)[1], connect_args={"timeout": timeout})
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return True
            finally:
                engine.dispose()
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        log.info("broker check failed: %s", exc)
        return False
