"""`matchmaking bench-notify`: publish-to-inbox latency and delivery throughput, end to end.

On a scratch SQLite database it starts a real worker (Redis or the embedded broker), publishes
offer/need pairs one at a time through the listing service and times, for each pair, the commit
of the need until the buyer's first e-mail lands in the local mailbox (engine, notification,
delivery and both broker hops included; the need's matches with earlier pairs' offers are
notified in the same burst, so later pairs carry a larger fan-out). Then it queues a burst of e-mails at once and counts
deliveries per second.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
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
    from matchmaking.extensions import db
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
        seeding.load_reference(db.session)
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
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    ms = [x * 1000 for x in latencies]
    return "\n".join([
        f"broker: {broker}  (worker: prefork, concurrency 2; database: SQLite; e-mail: local mailbox)",
        f"publish-to-inbox latency over {len(ms)} pairs: p50 {_percentile(ms, 0.5):.0f} ms, "
        f"p95 {_percentile(ms, 0.95):.0f} ms, max {max(ms):.0f} ms, mean {statistics.fmean(ms):.0f} ms",
        f"e-mails per publication (fan-out): median {statistics.median(fan_out):.0f}, max {max(fan_out)}",
        f"deliveries: {deliveries} e-mails in {deliveries / rate:.1f} s = {rate:.0f} per second",
        f"scratch files: {tmp}",
    ])


def _wait(predicate: Any, timeout: float, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out: is the worker running? see worker.log in the scratch folder")
        time.sleep(interval)


def _latencies(app: Any, pairs: int) -> tuple[list[float], list[int]]:
    from matchmaking.extensions import db
    from matchmaking.models import MailboxMessage
    from matchmaking.services import firms, listings, users

    latencies: list[float] = []
    fan_out: list[int] = []  # e-mails caused by each need's publication
    for i in range(pairs):
        seller = firms.register_firm(db.session, {"name": f"Scierie {i}", "siret": _siret(2 * i),
                                                  "commune_insee": "53271"})
        buyer = firms.register_firm(db.session, {"name": f"Élevage {i}", "siret": _siret(2 * i + 1),
                                                 "commune_insee": "53271"})
        users.create_user(db.session, email=f"vente{i}@bench.example.fr", password="bench password", firm=seller)
        buyer_user = users.create_user(db.session, email=f"achat{i}@bench.example.fr", password="bench password",
                                       firm=buyer)
        listings.create_listing(db.session, seller, OFFER)
        db.session.commit()
        _wait(_idle, 120)  # time the need's own pipeline, not the offer's fan-out still in flight
        email = buyer_user.email
        before = _mailbox_count()
        listings.create_listing(db.session, buyer, NEED)
        db.session.commit()
        started = time.monotonic()

        def arrived(address: str = email) -> bool:
            found = db.session.scalar(select(MailboxMessage.id).where(MailboxMessage.to == address).limit(1))
            db.session.rollback()
            return found is not None

        _wait(arrived, 60)
        latencies.append(time.monotonic() - started)
        _wait(_idle, 120)
        fan_out.append(_mailbox_count() - before)
    return latencies, fan_out


def _mailbox_count() -> int:
    from matchmaking.extensions import db
    from matchmaking.models import MailboxMessage

    n = db.session.scalar(select(func.count()).select_from(MailboxMessage)) or 0
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
    from matchmaking.extensions import db
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
        outbox.emit(db.session, "deliver.email", {"notification_id": notice.id}, f"bench-email:{notice.id}")
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
