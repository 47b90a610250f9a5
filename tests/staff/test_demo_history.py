"""The demo territory's fictitious past: loaded from relative dates, once."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select

from matchmaking.extensions import db
from matchmaking.matching import nomenclature
from matchmaking.models import Exchange, Listing, Match
from matchmaking.services import demo_history


def _rows() -> list[dict[str, str]]:
    with (nomenclature.seed_dir() / "demo" / "history.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_history_covers_18_months_and_loads_once(demo_app: Any) -> None:
    rows = _rows()
    assert {int(r["month"]) for r in rows} == set(range(-17, 1))
    with demo_app.app_context():
        matches = db.session.scalar(select(func.count(Match.id)))
        exchanges = db.session.scalar(select(func.count(Exchange.id)))
        assert matches == len({(r["offer"], r["need"]) for r in rows})
        assert exchanges == sum(r["event"] == "exchange" for r in rows)
        again = demo_history.load_history(db.session, today=datetime.now(UTC).date())
        assert set(again.values()) == {0}
        assert db.session.scalar(select(func.count(Exchange.id))) == exchanges
        sawdust = db.session.scalar(select(Listing).where(Listing.reference == "L001"))
        assert sawdust.published_at.date() < date.today().replace(day=1)
        db.session.rollback()


def test_relative_dates_never_fall_in_the_future() -> None:
    today = date(2026, 3, 10)
    assert demo_history.event_date(0, 27, today) == today
    assert demo_history.event_date(-1, 31, today) == date(2026, 2, 28)
    assert demo_history.event_date(-14, 5, today) == date(2025, 1, 5)
