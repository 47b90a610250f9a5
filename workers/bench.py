"""`matchmaking bench-notify`: publish-to-inbox latency, e-mails per publication and delivery
throughput, end to end.

On a scratch SQLite database it starts a real worker (Redis or the embedded broker), publishes
offer/need pairs one at a time through the listing service and times, for each pair, the commit
of the need until the buyer's first e-mail lands in the local mailbox (engine, notification,
delivery and both broker hops included). Every need matches the offers of earlier pairs too (up to
the engine's 20), so later publications tell more firms: it counts the e-mails each publication
causes, in all and per address (one per recipient is the aim), and the matches they carry. Then it
queues a burst of e-mails at once and counts deliveries per second. With the embedded broker it
also reports what the broker's file keeps.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

OFFER = {"kind": "offer", "title": "Sciure et copeaux de chêne", "low_code": "03 01 05", "quantity": 5,
         "unit": "t", "frequency": "monthly", "description": "Sciure sèche de scierie, en big bags"}
NEED = {"kind": "need", "title": "Sciure de bois pour litière", "low_code": "03 01 05", "quantity": 5,
        "unit": "t", "frequency": "monthly", "radius_km": 60, "description": "Litière pour volailles"}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_bench(*, broker: str, redis_url: str, listings: int, deliveries: int) -> str:
    from matchmaking import migrate
    from matchmaking.app import create_app
    from matchmaking.extensions import db, db_session
    from matchmaking.services import seeding

    tmp = Path(tempfile.mkdtemp(prefix="mm-bench-"))
    database = "sqlite:///" + str(tmp / "bench.sqlite3")
    queue = f"bench-{uuid.uuid4().hex[:8]}"  # a queue of its own on a shared Redis
    config: dict[str, Any] = {"SQLALCHEMY_DATABASE_URI": database, "CELERY": {"task_default_queue": queue},
                              "SMTP_HOST": None, "OUTBOX_SWEEP_SECONDS": 5}
    if broker == "redis":
        config["CELERY_BROKER_URL"] = redis_url
    else:
        config["CELERY_EMBEDDED_BROKER"] = "sqla+sqlite:///" + str(tmp / "broker.sqlite3")
    app = create_app(config)
    with app.app_context():
        migrate.upgrade(db.engine)
        seeding.load_reference(db_session())
        db.session.commit()

    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "SMTP_HOST"}}
    env |= {"DATABASE_URL": database, "MATCHMAKING_CELERY": f'{{"task_default_queue": "{queue}"}}',
            "MATCHMAKING_OUTBOX_SWEEP_SECONDS": "5"}
    if broker == "redis":
        env["CELERY_BROKER_URL"] = redis_url
    else:
        env["CELERY_EMBEDDED_BROKER"] = config["CELERY_EMBEDDED_BROKER"]
    log = open(tmp / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "--loglevel=warning",
         "--concurrency=2", "--beat", "--schedule", str(tmp / "beat"), "--without-gossip", "--without-mingle"],
        env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        with app.app_context():
            latencies, fan_out = _latencies(app, listings)
            rate = _throughput(app, deliveries)
            broker_line = _broker_file(config.get("CELERY_EMBEDDED_BROKER"))
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    ms = [x * 1000 for x in latencies]
    emails = [f.emails for f in fan_out]
    matches = [f.matches for f in fan_out]
    return "\n".join(line for line in [
        f"broker: {broker}  (worker: prefork, concurrency 2; database: SQLite; e-mail: local mailbox)",
        f"publish-to-inbox latency over {len(ms)} pairs: p50 {_percentile(ms, 0.5):.0f} ms, "
        f"p95 {_percentile(ms, 0.95):.0f} ms, max {max(ms):.0f} ms, mean {statistics.fmean(ms):.0f} ms",
        f"new matches per publication: median {statistics.median(matches):.0f}, max {max(matches)}",
        f"e-mails per publication: median {statistics.median(emails):.0f}, max {max(emails)} "
        f"(the publisher: at most {max(f.to_publisher for f in fan_out)}; any one address: at most "
        f"{max(f.most_to_one for f in fan_out)}; the rest go one each to the firms whose listing gained a partner)",
        f"deliveries: {deliveries} e-mails in {deliveries / rate:.1f} s = {rate:.0f} per second",
        broker_line,
        f"scratch files: {tmp}",
    ] if line)


class FanOut:
    """What one publication caused: e-mails in all, to its publisher, at most to one address,
    and the matches the publisher was told of."""

    def __init__(self, emails: int, to_publisher: int, most_to_one: int, matches: int) -> None:
        self.emails, self.to_publisher, self.most_to_one, self.matches = emails, to_publisher, most_to_one, matches


def _broker_file(url: str | None) -> str:
    """Size and consumed messages kept by the embedded broker's file, after the run."""
    if not url:
        return ""
    from sqlalchemy import create_engine, text

    path = Path(url.split("///", 1)[1])
    engine = create_engine(url.split("+", 1)[1])
    try:
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT count(*) FROM kombu_message WHERE visible = 0")).scalar()
            waiting = conn.execute(text("SELECT count(*) FROM kombu_message WHERE visible = 1")).scalar()
    finally:
        engine.dispose()
    wal = path.with_name(path.name + "-wal")
    wal_size = wal.stat().st_size if wal.exists() else 0
    return (f"embedded broker file: {path.stat().st_size / 1024:.0f} KiB (write-ahead log {wal_size / 1024:.0f} KiB), "
            f"consumed messages kept: {kept}, waiting: {waiting}")


def _wait(predicate: Any, timeout: float, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out: is the worker running? see worker.log in the scratch folder")
        time.sleep(interval)


def _latencies(app: Any, pairs: int) -> tuple[list[float], list[FanOut]]:
    from matchmaking.extensions import db, db_session
    from matchmaking.models import MailboxMessage, Notification
    from matchmaking.services import firms, listings, users

    latencies: list[float] = []
    fan_out: list[FanOut] = []  # what each need's publication caused
    for i in range(pairs):
        seller = firms.register_firm(db_session(), {"name": f"Scierie {i}", "siret": _siret(2 * i),
                                                  "commune_insee": "53271"})
        buyer = firms.register_firm(db_session(), {"name": f"Élevage {i}", "siret": _siret(2 * i + 1),
                                                 "commune_insee": "53271"})
        users.create_user(db_session(), email=f"vente{i}@bench.example.fr", password="bench password", firm=seller)
        buyer_user = users.create_user(db_session(), email=f"achat{i}@bench.example.fr", password="bench password",
                                       firm=buyer)
        listings.create_listing(db_session(), seller, OFFER)
        db.session.commit()
        _wait(_idle, 120)  # time the need's own pipeline, not the offer's fan-out still in flight
        email = buyer_user.email
        before = _last_id(MailboxMessage)
        notices_before = _last_id(Notification)
        listings.create_listing(db_session(), buyer, NEED)
        db.session.commit()
        started = time.monotonic()

        def arrived(address: str = email) -> bool:
            found = db.session.scalar(select(MailboxMessage.id).where(MailboxMessage.to == address).limit(1))
            db.session.rollback()
            return found is not None

        _wait(arrived, 60)
        latencies.append(time.monotonic() - started)
        _wait(_idle, 120)
        sent = Counter(db.session.scalars(select(MailboxMessage.to).where(MailboxMessage.id > before)))
        told = db.session.scalar(select(func.count()).select_from(Notification).where(
            Notification.id > notices_before, Notification.user_id == buyer_user.id)) or 0
        db.session.rollback()
        fan_out.append(FanOut(sum(sent.values()), sent[email], max(sent.values(), default=0), int(told)))
    return latencies, fan_out


def _last_id(model: Any) -> int:
    from matchmaking.extensions import db

    n = db.session.scalar(select(func.max(model.id))) or 0
    db.session.rollback()
    return int(n)


def _idle() -> bool:
    from matchmaking.extensions import db
    from matchmaking.models import OutboxEvent, OutboxStatus

    pending = db.session.scalar(select(func.count()).select_from(OutboxEvent)
                                .where(OutboxEvent.status == OutboxStatus.pending))
    db.session.rollback()
    return pending == 0


def _throughput(app: Any, count: int) -> float:
    """Queue `count` notification e-mails in one transaction; deliveries per second until all are done."""
    from matchmaking.extensions import db, db_session
    from matchmaking.models import Match, Notification, OutboxEvent, OutboxStatus, User
    from matchmaking.services import outbox

    match = db.session.scalar(select(Match).limit(1))
    if match is None:
        raise RuntimeError("no match was found during the latency run")
    firm_id = match.need.firm_id
    first = db.session.scalar(select(func.max(User.id))) or 0
    db.session.execute(insert(User), [
        {"email": f"lot{first + n}@bench.example.fr", "password_hash": "-", "firm_id": firm_id, "role": "member"}
        for n in range(count)])
    ids = list(db.session.scalars(select(User.id).where(User.id > first).order_by(User.id)))
    notices = [Notification(user_id=uid, kind="match.found", dedup_key=f"bench:{match.id}", match_id=match.id,
                            payload={"match_id": match.id, "score": 0.8, "distance_km": 3.0,
                                     "listing_title": NEED["title"], "other_title": OFFER["title"]})
               for uid in ids]
    db.session.add_all(notices)
    db.session.flush()
    for notice in notices:
        outbox.emit(db_session(), "deliver.email",
                    {"user_id": notice.user_id, "notification_ids": [notice.id], "trigger": "bench"},
                    f"bench-email:{notice.id}")
    db.session.commit()
    started = time.monotonic()

    def all_done() -> bool:
        pending = db.session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.kind == "deliver.email", OutboxEvent.status == OutboxStatus.pending))
        db.session.rollback()
        return pending == 0

    _wait(all_done, 600, 0.05)
    return count / (time.monotonic() - started)


def _siret(n: int) -> str:
    from matchmaking.services.validation import luhn_ok

    prefix = f"{800000000 + n:09d}0001"
    return next(prefix + d for d in "0123456789" if luhn_ok(prefix + d))
