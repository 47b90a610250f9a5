"""A listing's title goes into e-mail subjects: newlines, control characters and very long lines
must never stop the e-mails about that listing."""

from __future__ import annotations

from typing import Any

import pytest

from matchmaking.models import MailboxMessage
from matchmaking.services import delivery
from tests.workers.harness import SmtpSink
from tests.workers.test_delivery import _notified, _settings

TITLES = [
    "Sciure\nBcc: victime@example.fr",
    "Chutes\r\nde\rbois",
    # (no NUL: PostgreSQL stores none, and validation never lets one through)
    "Palettes \x01\x07\x1b[31m cassées\x7f\u2028fin",
    "é" * 1000,
    "x" * 1000,
]


@pytest.mark.parametrize("title", TITLES, ids=["newline-header", "crlf", "control", "1000-accented", "1000-ascii"])
def test_titles_that_cannot_sit_in_a_header_are_still_delivered(wsession: Any, firms: Any, title: str) -> None:
    (notice, _) = _notified(wsession, firms)
    notice.payload = dict(notice.payload) | {"listing_title": title}
    wsession.flush()
    sink = SmtpSink().start()
    try:
        settings = _settings(smtp_host="127.0.0.1", smtp_port=sink.port, smtp_tls="none", smtp_timeout=5)
        message = delivery.notification_email(notice, settings)
        delivery.send(wsession, message, settings)
        assert sink.received == [(message["Message-ID"], notice.user.email)]
    finally:
        sink.stop()
    raw = message.as_bytes()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in headers and "Bcc" not in message
    subject = str(message["Subject"])
    assert "\n" not in subject and "\r" not in subject and "\x01" not in subject
    assert len(subject) <= delivery.SUBJECT_MAX + 40  # the kind of notice around the capped title
    delivery.send(wsession, message, _settings())  # the embedded mailbox keeps it too
    assert wsession.query(MailboxMessage).count() == 1
