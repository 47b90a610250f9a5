"""Publishing listings delivers each owed e-mail and webhook exactly once, through a real worker
process, on Redis and on the embedded SQLite broker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.workers import harness
from tests.workers.harness import RedisServer, Rig, report, scratch_database, wait_until

redis_server = harness.redis_server
receivers = harness.receivers

pytestmark = pytest.mark.workers


def test_redis_broker_delivers_every_email_and_webhook_once(tmp_path: Path, redis_server: RedisServer,
                                                            receivers: Any) -> None:
    smtp, hooks = receivers
    with scratch_database(tmp_path) as url:
        rig = Rig(tmp_path, url, redis_server.url, smtp, hooks)
        try:
            rig.worker()
            rig.setup_firms(4)
            for i in range(4):
                rig.publish_pair(i)
            rig.wait_settled(8, 4, 60, "deliveries")
            tally = rig.tally()
            report("redis", tally)
            assert tally["emails_owed"] == 8 and tally["webhooks_owed"] == 4
            assert tally["emails_lost"] == tally["emails_doubled"] == 0
            assert tally["webhooks_lost"] == tally["webhooks_doubled"] == 0
            assert tally["unexpected_emails"] == 0 and hooks.bad_signatures == 0
            message = smtp.messages[0]
            assert message["List-Unsubscribe"].startswith("<http")
            assert message.is_multipart()  # text and HTML
        finally:
            rig.close()


def test_embedded_broker_and_mailbox_deliver_once(tmp_path: Path, receivers: Any) -> None:
    """The default without Redis or SMTP: SQLite broker, e-mails kept in the local mailbox."""
    from matchmaking.models import MailboxMessage

    _, hooks = receivers
    with scratch_database(tmp_path) as url:
        rig = Rig(tmp_path, url, None, None, hooks)
        try:
            rig.worker()
            rig.setup_firms(3)
            started = time.monotonic()
            for i in range(3):
                rig.publish_pair(i)

            def mailbox() -> list[str]:
                with rig.db() as session:
                    return list(session.scalars(select(MailboxMessage.message_id)))

            wait_until(lambda: len(mailbox()) >= 6 and len(hooks.accepted()) >= 3, 60, what="mailbox")
            elapsed = time.monotonic() - started
            time.sleep(1.5)  # anything doubled would show up now
            owed = rig.owed()
            assert sorted(mailbox()) == sorted(owed["email"])
            assert sorted(hooks.accepted().elements()) == sorted(owed["webhook"])
            assert rig.statuses().get("pending", 0) == 0 and rig.statuses().get("failed", 0) == 0
            # The broker keeps no consumed message (kombu's own transport would keep all of them).
            from tests.workers.test_broker import _rows

            assert _rows(tmp_path / "broker.sqlite3")[1] == 0
            print(f"embedded: 6 e-mails and 3 webhooks in {elapsed:.1f}s")
        finally:
            rig.close()


def test_a_need_matching_several_offers_is_one_email_per_recipient(tmp_path: Path, receivers: Any) -> None:
    """Four sellers offer the same material; a buyer's need then matches all four: the buyer's two
    members get one e-mail each listing the four, each seller one e-mail, the buyer's endpoint one
    call; the worker is restarted and the match task run again: nothing more goes out."""
    from collections import Counter

    from matchmaking.models import Firm, OutboxEvent, WebhookEndpoint
    from tests.factories import make_firm, make_listing, make_user

    smtp, hooks = receivers
    with scratch_database(tmp_path) as url:
        rig = Rig(tmp_path, url, None, smtp, hooks)
        try:
            rig.worker()
            with rig.db() as session:
                for i in range(4):
                    seller = make_firm(session, name=f"Vendeur {i}")
                    make_user(session, seller, email=f"vendeur{i}@example.fr")
                    make_listing(session, seller, title="Copeaux de hêtre")
                buyer = make_firm(session, name="Acheteur")
                make_user(session, buyer, email="achat@example.fr")
                make_user(session, buyer, email="direction@example.fr")
                session.add(WebhookEndpoint(firm_id=buyer.id, url=hooks.url, secret=hooks.secret))
                session.commit()
                buyer_id = buyer.id
            wait_until(lambda: rig.statuses().get("pending", 0) == 0 and rig.statuses().get("done", 0) == 4, 60,
                       what="the offers matched (with nothing to tell)")
            with rig.db() as session:
                make_listing(session, session.get(Firm, buyer_id), kind="need", title="Copeaux de hêtre")
                session.commit()
            rig.wait_settled(6, 1, 60, "deliveries")
            time.sleep(1.5)
            per_address = Counter(to for _, to in smtp.received)
            assert per_address == Counter({"achat@example.fr": 1, "direction@example.fr": 1,
                                           **{f"vendeur{i}@example.fr": 1 for i in range(4)}})
            tally = rig.tally()
            report("embedded, one need matching 4 offers", tally | {"emails_per_publication": len(smtp.received)})
            assert tally["emails_lost"] == tally["emails_doubled"] == tally["unexpected_emails"] == 0
            assert len(hooks.accepted()) == 1 and hooks.bad_signatures == 0

            # The match task once more, by hand: the worker finds nothing new to tell.
            with rig.db() as session:
                event = session.scalars(select(OutboxEvent).where(OutboxEvent.kind == "listing.changed")
                                        .order_by(OutboxEvent.id.desc())).first()
                event.status = "pending"
                session.commit()
            wait_until(lambda: rig.statuses().get("pending", 0) == 0, 60, what="the match task run again")
            time.sleep(2)
            assert len(smtp.received) == 6 and len(hooks.requests) == 1
        finally:
            rig.close()
