"""What the load test found hot, pinned: a firm's matches are found through the indexes, and the
pages that list matches or search results run a fixed number of queries whatever the number of
matches (no query per row)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from sqlalchemy import event, select, text

from matchmaking.extensions import db
from matchmaking.models import Match
from matchmaking.services import matching, queries
from tests.factories import make_firm, make_listing, make_user
from tests.web.conftest import _fresh_limits_and_rows, sign_in  # noqa: F401 - fixture

_ = _fresh_limits_and_rows


@pytest.fixture()
def territory(session: Any) -> tuple[Any, Any, list[Any]]:
    """A firm with two needs and 12 offers of other firms matched with them (and with 12 needs of
    yet other firms)."""
    mine = make_firm(session)
    user = make_user(session, mine)
    needs = [make_listing(session, mine, kind="need", title="Caoutchouc à broyer", radius_km=100),
             make_listing(session, mine, kind="need", title="Chambres à air usagées", radius_km=100)]
    offers = [make_listing(session, make_firm(session), title=f"Chutes de chambres à air {i}", low_code="16 01 03")
              for i in range(12)]
    theirs = [make_listing(session, make_firm(session), kind="need", title=f"Caoutchouc {i}") for i in range(12)]
    session.flush()
    for i, offer in enumerate(offers):
        session.add(Match(offer=offer, need=needs[i % 2], score=0.5 + i / 100, explanation={"words": ["caoutchouc"]}))
        # The same offers matched with other firms' needs: none of my business, nor of my pages' queries.
        session.add(Match(offer=offer, need=theirs[i], score=0.6, explanation={"words": ["caoutchouc"]}))
    session.commit()
    matching.reset_index()
    return mine, user, offers


class Count:
    def __init__(self) -> None:
        self.selects = 0

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.selects += 1


def _selects(app: Any, client: Any, path: str) -> int:
    client.get(path)  # the engine's index is built on a first search, then only caught up
    counter = Count()
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", counter)
    try:
        response = client.get(path)
        assert response.status_code == 200, path
    finally:
        event.remove(engine, "before_cursor_execute", counter)
    return counter.selects


def test_pages_listing_matches_run_the_same_queries_for_2_or_12_matches(app, client, session, territory) -> None:
    mine, user, offers = territory
    sign_in(client, user)
    paths = ["/matches", "/my", "/search?q=chambres+%C3%A0+air&kind=offer&radius_km=500"]
    many = {path: _selects(app, client, path) for path in paths}
    for match in session.scalars(select(Match).order_by(Match.id)).all()[4:]:
        session.delete(match)
    session.commit()
    few = {path: _selects(app, client, path) for path in paths}
    assert many == few


def test_a_firms_matches_are_found_through_the_indexes(session, territory) -> None:
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("query plans are PostgreSQL's")
    mine, _user, _offers = territory
    session.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table would be scanned anyway
    plan = "\n".join(session.scalars(text("EXPLAIN " + str(
        select(Match.id).where(Match.id.in_(queries.firm_match_ids(mine.id)))
        .compile(session.get_bind(), compile_kwargs={"literal_binds": True})))))
    session.rollback()
    assert "Seq Scan on match" not in plan, plan
    assert "ix_match_offer_id" in plan and "ix_match_need_id" in plan, plan
