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
            wait_until(lambda: rig.settled(emails=8, webhooks=4), 60, what="deliveries")
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
            print(f"embedded: 6 e-mails and 3 webhooks in {elapsed:.1f}s")
        finally:
            rig.close()
