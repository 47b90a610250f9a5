"""`matchmaking run` without Redis: a real worker starts beside the web app on the embedded broker,
matches and notifies like production, and stops with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.workers.harness import SECRET, WebhookReceiver, _children, free_port, wait_until

pytestmark = [pytest.mark.workers, pytest.mark.sqlite_only]

CLI = [sys.executable, "-m", "matchmaking.cli"]


def test_run_starts_and_stops_a_worker_on_the_embedded_broker(tmp_path: Path) -> None:
    from matchmaking.extensions import db
    from matchmaking.models import MailboxMessage, WebhookEndpoint
    from matchmaking.services import listings
    from tests.conftest import make_app
    from tests.factories import make_firm, make_user
    from workers.bench import NEED, OFFER

    database = "sqlite:///" + str(tmp_path / "run.sqlite3")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL",
                                                               "SMTP_HOST"}}
    env |= {"DATABASE_URL": database, "SECRET_KEY": "run-test", "MATCHMAKING_OUTBOX_SWEEP_SECONDS": "2",
            "WEBHOOK_ALLOW_PRIVATE": "true"}
    subprocess.run([*CLI, "init-db"], env=env, check=True, capture_output=True, timeout=120)
    subprocess.run([*CLI, "seed"], env=env, check=True, capture_output=True, timeout=300)

    port = free_port()
    hooks = WebhookReceiver().start()
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([*CLI, "run", "--port", str(port)], env=env, stdout=log, stderr=log)
    try:
        def health() -> dict[str, str] | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    return dict(json.load(response))
            except OSError:
                return None

        assert wait_until(health, 60, 0.3, "the web app")["broker"] == "ok"
        wait_until(lambda: _children(server.pid), 30, 0.2, "the worker process")

        # A publication from another process (as the web app would do) reaches the buyer's mailbox.
        app = make_app(database, TESTING=False)
        with app.app_context():
            seller, buyer = make_firm(db.session), make_firm(db.session)
            make_user(db.session, seller, email="vente@run.example.fr")
            make_user(db.session, buyer, email="achat@run.example.fr")
            db.session.add(WebhookEndpoint(firm_id=buyer.id, url=hooks.url, secret=SECRET))
            listings.create_listing(db.session, seller, OFFER)
            listings.create_listing(db.session, buyer, NEED)
            db.session.commit()

            def delivered() -> list[str]:
                found = list(db.session.scalars(select(MailboxMessage.to)))
                db.session.rollback()
                return found

            mail = wait_until(lambda: len(delivered()) >= 2 and delivered(), 90, 0.5, "e-mails in the mailbox")
            assert sorted(mail) == ["achat@run.example.fr", "vente@run.example.fr"]
            wait_until(lambda: hooks.accepted(), 30, 0.2, "the buyer's webhook")
            assert len(hooks.requests) == 1 and hooks.bad_signatures == 0
            db.session.remove()
            db.engine.dispose()
        worker_pids = _children(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
        hooks.stop()
    time.sleep(0.5)
    assert not [pid for pid in worker_pids if Path(f"/proc/{pid}").exists()
                and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
