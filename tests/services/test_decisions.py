from datetime import date, timedelta

import pytest
from sqlalchemy import select

from matchmaking.models import AuditLog, Decision, ListingStatus, Match, MatchStatus, OutboxEvent
from matchmaking.services import decisions
from matchmaking.services.errors import Conflict, NotFound, ValidationError
from tests.factories import make_firm, make_listing, make_user


@pytest.fixture()
def deal(session):
    seller, buyer = make_firm(session), make_firm(session)
    offer = make_listing(session, seller, low_code="16 01 03")
    need = make_listing(session, buyer, kind="need", title="Caoutchouc")
    match = Match(offer=offer, need=need, score=0.7, distance_km=5.0)
    session.add(match)
    session.flush()
    return match, make_user(session, seller), make_user(session, buyer)


def events(session, match):
    return [e.idempotency_key for e in session.scalars(select(OutboxEvent).where(OutboxEvent.kind == "match.decision"))
            if e.payload["match_id"] == match.id]


def test_both_acceptances_accept_the_match_with_one_event_and_audit_row_each(session, deal) -> None:
    match, seller, buyer = deal
    decisions.express_interest(session, match, buyer)
    assert (match.status, match.need_decision) == (MatchStatus.interested, Decision.interested)
    decisions.accept(session, match, seller)
    assert match.status is MatchStatus.interested and match.accepted_at is None
    decisions.accept(session, match, buyer)
    assert match.status is MatchStatus.accepted and match.accepted_at is not None
    assert events(session, match) == [
        f"match.decision:{match.id}:need:interested",
        f"match.decision:{match.id}:offer:accepted",
        f"match.decision:{match.id}:need:accepted",
    ]
    actions = session.scalars(select(AuditLog.action).where(AuditLog.target_id == match.id)).all()
    assert actions == ["match.interested", "match.accepted", "match.accepted"]


def test_repeating_a_decision_changes_nothing(session, deal) -> None:
    match, seller, _ = deal
    decisions.accept(session, match, seller)
    decisions.accept(session, match, seller)
    assert len(events(session, match)) == 1


def test_a_decline_by_either_side_closes_the_match(session, deal) -> None:
    match, seller, buyer = deal
    decisions.accept(session, match, seller)
    decisions.decline(session, match, buyer)
    assert (match.status, match.need_decision) == (MatchStatus.declined, Decision.declined)
    with pytest.raises(Conflict):
        decisions.accept(session, match, buyer)
    with pytest.raises(Conflict):
        decisions.express_interest(session, match, seller)


def test_an_accepted_match_cannot_be_declined_nor_walked_back(session, deal) -> None:
    match, seller, buyer = deal
    decisions.accept(session, match, seller)
    decisions.accept(session, match, buyer)
    with pytest.raises(Conflict):
        decisions.decline(session, match, seller)
    with pytest.raises(Conflict):
        decisions.express_interest(session, match, seller)


def test_a_closed_listing_takes_no_new_acceptance(session, deal) -> None:
    match, seller, buyer = deal
    match.offer.status = ListingStatus.closed
    session.flush()
    with pytest.raises(Conflict):
        decisions.accept(session, match, buyer)
    decisions.decline(session, match, buyer)
    assert match.status is MatchStatus.declined


def test_a_third_firm_is_not_a_party(session, deal) -> None:
    match, _, _ = deal
    outsider = make_user(session, make_firm(session))
    with pytest.raises(NotFound):
        decisions.accept(session, match, outsider)
    with pytest.raises(NotFound):
        decisions.match_for(session, make_user(session, role="admin"), match.public_id)


def test_exchanges_are_recorded_on_accepted_matches_only_with_tonnes(session, deal) -> None:
    match, seller, buyer = deal
    data = {"quantity": 250, "unit": "kg", "date": date.today().isoformat()}
    with pytest.raises(Conflict):
        decisions.record_exchange(session, match, seller, data)
    decisions.accept(session, match, seller)
    decisions.accept(session, match, buyer)
    exchange = decisions.record_exchange(session, match, buyer, data)
    assert exchange.tonnes == pytest.approx(0.25) and exchange.recorded_by_id == buyer.id
    assert session.scalar(select(OutboxEvent).where(OutboxEvent.idempotency_key == f"exchange.recorded:{exchange.id}"))


def test_an_exchange_names_each_bad_field(session, deal) -> None:
    match, seller, buyer = deal
    decisions.accept(session, match, seller)
    decisions.accept(session, match, buyer)
    tomorrow_plus = (date.today() + timedelta(days=5)).isoformat()
    with pytest.raises(ValidationError) as caught:
        decisions.record_exchange(session, match, buyer, {"quantity": -1, "unit": "barrels", "date": tomorrow_plus})
    assert set(caught.value.errors) == {"quantity", "unit", "date"}
    with pytest.raises(ValidationError) as caught:
        decisions.record_exchange(session, match, buyer, {"quantity": 1, "unit": "t"})
    assert set(caught.value.errors) == {"date"}


@pytest.mark.postgres
def test_two_parties_accepting_at_the_same_moment_both_count(app, session) -> None:
    """Each acceptance re-reads the other side's decision under a row lock, so neither is lost."""
    import os
    import threading

    from matchmaking.extensions import db

    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("row locks are a PostgreSQL matter; SQLite serialises writers")
    seller, buyer = make_firm(session), make_firm(session)
    offer = make_listing(session, seller)
    need = make_listing(session, buyer, kind="need", title="Caoutchouc")
    match = Match(offer=offer, need=need, score=0.7)
    session.add(match)
    users = [make_user(session, seller), make_user(session, buyer)]
    session.commit()
    ids = (match.public_id, [u.id for u in users])
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def accept(user_id: int) -> None:
        try:
            with app.app_context():
                from matchmaking.models import User

                user = db.session.get(User, user_id)
                found = decisions.match_for(db.session, user, ids[0])
                start.wait()
                decisions.accept(db.session, found, user)
                db.session.commit()
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=accept, args=(uid,)) for uid in ids[1]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures
    session.expire_all()
    assert session.get(Match, match.id).status is MatchStatus.accepted


def test_a_decline_keeps_its_one_click_reason_and_an_unknown_one_is_refused(session, deal) -> None:
    match, seller, buyer = deal
    with pytest.raises(ValidationError) as refused:
        decisions.decline(session, match, buyer, reason="because")
    assert "reason" in refused.value.messages()
    assert match.status is MatchStatus.proposed  # nothing written
    decisions.decline(session, match, buyer, reason="too_far")
    assert match.need_decline_reason == "too_far" and match.offer_decline_reason is None
    payload = next(e.payload for e in session.scalars(select(OutboxEvent).where(OutboxEvent.kind == "match.decision")))
    assert payload["reason"] == "too_far"


def test_the_first_decision_keeps_what_the_firms_saw_whatever_a_rematch_writes(session, deal) -> None:
    match, seller, buyer = deal
    match.explanation = {"score": 0.5, "probability": 0.7, "model_version": "2026-12-07-abc", "phrase_fr": "x"}
    decisions.express_interest(session, match, buyer)
    assert match.decided_score == 0.7 and match.model_version == "2026-12-07-abc"
    # A later model scores the pair again: the snapshot stays.
    match.score, match.explanation = 0.2, {"probability": 0.2, "model_version": "later"}
    decisions.accept(session, match, seller)
    assert match.decided_score == 0.7 and match.decided_explanation["phrase_fr"] == "x"


def test_decided_pairs_teach_what_the_firms_said(session) -> None:
    from matchmaking.services.learning import decided_pairs

    seller, buyer = make_firm(session), make_firm(session)
    pairs = {}
    for reason in ("wrong_material", "too_far", None):
        offer = make_listing(session, seller, title=f"Chutes {reason}")
        need = make_listing(session, buyer, kind="need", title=f"Besoin {reason}")
        m = Match(offer=offer, need=need, score=0.7)
        session.add(m)
        session.flush()
        pairs[reason] = m
    s_user, b_user = make_user(session, seller), make_user(session, buyer)
    decisions.decline(session, pairs["wrong_material"], b_user, reason="wrong_material")
    decisions.decline(session, pairs["too_far"], b_user, reason="too_far")
    decisions.accept(session, pairs[None], s_user)
    decisions.accept(session, pairs[None], b_user)
    learned = {(o.title, label) for o, _n, label in decided_pairs(session)}
    # A wrong material teaches "not a pair"; too far says nothing of the material; both accepting, "a pair".
    assert learned == {("Chutes wrong_material", 0), ("Chutes None", 1)}
