"""The life cycle of listings and matches as a state machine (hypothesis RuleBasedStateMachine).

Two firms that list anonymously, and a CCMA facilitator, do anything in any order: publish, edit
(kind included), pause, close and publish again, express interest, accept, decline, record
exchanges, introduce, move the follow-up; the workers (the real engine, notifications, e-mails to
the embedded mailbox) run whenever the machine lets them, so they may lag behind the firms. After
every step:
  * a match's status agrees with both decisions, and its offer is an offer and its need a need;
  * exchanges exist only on accepted matches; no match pairs a firm with itself;
  * each firm sees the other's identity (and contacts) iff a match between them is accepted by both;
  * every decision taken has its outbox event (so the other firm is told) and its audit row;
  * no e-mail, notification or webhook-bound notice sent to one firm names the other before then.
A refused action (the workflow's Conflict, a validation error) changes nothing.

Bounded for CI: LIFECYCLE_EXAMPLES examples (default 25) of at most 30 steps.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from matchmaking.extensions import db
from matchmaking.models import (
    AuditLog,
    Decision,
    Exchange,
    FollowUp,
    Kind,
    Listing,
    ListingStatus,
    MailboxMessage,
    Match,
    MatchStatus,
    Notification,
    OutboxEvent,
    OutboxStatus,
    Role,
    User,
)
from matchmaking.services import decisions, facilitation, listings, visibility
from matchmaking.services.errors import Conflict, ValidationError
from tests.reliability.privacy_world import add_user, new_firm, wipe
from workers import tasks

EXAMPLES = int(os.environ.get("LIFECYCLE_EXAMPLES", "25"))
# Words the engine pairs: every offer here finds every need.
OFFERS = ["Sciure de chêne", "Copeaux de bois", "Sciure de hêtre"]
NEEDS = ["Sciure pour litière", "Copeaux pour litière", "Sciure de bois"]
FIRMS = {
    "x": {"name": "Fonderie Xénon", "contact_name": "Xavier Xénon", "contact_email": "xavier@xenon.example.fr",
          "contact_phone": "02 43 10 10 10"},
    "y": {"name": "Yaourterie Ypsilon", "contact_name": "Yvette Ypsilon",
          "contact_email": "yvette@ypsilon.example.fr", "contact_phone": "02 43 20 20 20"},
}
APP: Any = None


def recent(items: list[Any], pick: int) -> Any:
    """One of the last few items: actions pile up on the same listings and matches, as in life."""
    return items[-1 - pick % len(items)]


def snapshot(match: Match) -> tuple[Any, ...]:
    return (match.status, match.offer_decision, match.need_decision, len(match.exchanges), match.introduced_at,
            match.follow_up)


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.context = APP.test_request_context()
        self.context.push()
        session = db.session
        wipe(session)
        self.firm_ids: dict[str, int] = {}
        self.user_ids: dict[str, int] = {}
        for n, (key, data) in enumerate(FIRMS.items(), start=31):
            firm = new_firm(session, n, **data, commune_insee="53271" if key == "x" else "53147")
            self.firm_ids[key] = firm.id
            user = add_user(session, f"{key}@{key}.example.fr", firm=firm, name=data["contact_name"])
            user.notify_min_score = 0.0  # told of every match: more messages to check
            self.user_ids[key] = user.id
        self.user_ids["f"] = add_user(session, "f@ccma.example.fr", Role.facilitator, name="Fanny").id
        session.commit()
        self.messages_seen = 0
        self.notices_seen = 0

    def teardown(self) -> None:
        wipe(db.session)
        self.context.pop()

    # --- helpers ------------------------------------------------------------------------------

    @property
    def session(self) -> Any:
        return db.session

    def user(self, key: str) -> User:
        found = self.session.get(User, self.user_ids[key])
        assert found is not None
        return found

    def listings(self) -> list[Listing]:
        return list(self.session.scalars(select(Listing).order_by(Listing.id)))

    def matches(self) -> list[Match]:
        return list(self.session.scalars(select(Match).order_by(Match.id)))

    def party(self, match: Match, side: str) -> User:
        listing = match.offer if side == "offer" else match.need
        return self.user(next(k for k, v in self.firm_ids.items() if v == listing.firm_id))

    def refused(self, match: Match, action: Any) -> None:
        """Run a workflow action; when the workflow refuses it, nothing may have changed."""
        before = snapshot(match)
        try:
            action()
            self.session.commit()
        except (Conflict, ValidationError):
            self.session.rollback()
            match = self.session.get(Match, match.id)
            assert snapshot(match) == before

    # --- what firms do ------------------------------------------------------------------------

    @initialize(offer=st.integers(0, 2), need=st.integers(0, 2))
    def a_first_pair(self, offer: int, need: int) -> None:
        """Each run starts from one offer of X, one need of Y and the workers' pass (so, a match)."""
        self.declare("x", "offer", offer, True, 2)
        self.declare("y", "need", need, True, 2)
        self.work()

    @rule(firm=st.sampled_from(["x", "y"]), kind=st.sampled_from(["offer", "need"]), title=st.integers(0, 2),
          publish=st.booleans(), quantity=st.sampled_from([0.5, 2, 30]))
    def declare(self, firm: str, kind: str, title: int, publish: bool, quantity: float) -> None:
        owner = self.user(firm).firm
        assert owner is not None
        listings.create_listing(self.session, owner, {
            "kind": kind, "title": (OFFERS if kind == "offer" else NEEDS)[title], "quantity": quantity,
            "unit": "t", "frequency": "monthly", "anonymous": True, "price_eur_per_unit": 10}, publish=publish)
        self.session.commit()

    @precondition(lambda self: self.listings())
    @rule(pick=st.integers(0, 3), change=st.sampled_from(["quantity", "title", "kind", "description"]))
    def edit(self, pick: int, change: str) -> None:
        listing = recent(self.listings(), pick)
        data: dict[str, Any] = {
            "quantity": {"quantity": listing.quantity * 2},
            "title": {"title": (NEEDS if listing.kind is Kind.offer else OFFERS)[pick % 3]},
            "kind": {"kind": "need" if listing.kind is Kind.offer else "offer"},
            "description": {"description": "Disponible toute l'année."},
        }[change]
        try:
            listings.update_listing(self.session, listing, data)
            self.session.commit()
        except ValidationError:
            self.session.rollback()

    @precondition(lambda self: self.listings())
    @rule(pick=st.integers(0, 3), status=st.sampled_from([ListingStatus.published, ListingStatus.paused,
                                                           ListingStatus.closed]))
    def set_status(self, pick: int, status: ListingStatus) -> None:
        listing = recent(self.listings(), pick)
        listings.set_status(self.session, listing, status)
        self.session.commit()

    @precondition(lambda self: self.matches())
    @rule(pick=st.integers(0, 3), side=st.sampled_from(["offer", "need"]),
          decision=st.sampled_from([Decision.interested, Decision.accepted, Decision.declined]))
    def decide(self, pick: int, side: str, decision: Decision) -> None:
        match = recent(self.matches(), pick)
        user = self.party(match, side)
        self.refused(match, lambda: decisions.decide(self.session, match, user, decision))

    @precondition(lambda self: self.matches())
    @rule(pick=st.integers(0, 3), first=st.sampled_from(["offer", "need"]))
    def both_accept(self, pick: int, first: str) -> None:
        """One firm accepts, then the other (each a decision of its own, as above)."""
        for side in (first, "need" if first == "offer" else "offer"):
            self.decide(pick, side, Decision.accepted)

    @precondition(lambda self: self.matches())
    @rule(pick=st.integers(0, 3), side=st.sampled_from(["offer", "need"]), on_accepted=st.booleans())
    def record_exchange(self, pick: int, side: str, on_accepted: bool) -> None:
        accepted = [m for m in self.matches() if m.status is MatchStatus.accepted]
        match = recent(accepted if on_accepted and accepted else self.matches(), pick)
        user = self.party(match, side)
        self.refused(match, lambda: decisions.record_exchange(self.session, match, user, {
            "quantity": 1.5, "unit": "t", "date": "2025-06-01"}))

    # --- what the facilitator does --------------------------------------------------------------

    @precondition(lambda self: self.matches())
    @rule(pick=st.integers(0, 3))
    def introduce(self, pick: int) -> None:
        match = recent(self.matches(), pick)
        self.refused(match, lambda: facilitation.introduce(self.session, match, self.user("f"),
                                                           "Je vous présente l'un à l'autre."))

    @precondition(lambda self: self.matches())
    @rule(pick=st.integers(0, 3), status=st.sampled_from(list(FollowUp)))
    def follow_up(self, pick: int, status: FollowUp) -> None:
        match = recent(self.matches(), pick)
        self.refused(match, lambda: facilitation.set_follow_up(self.session, match, self.user("f"), status.value,
                                                               "Plus de besoin" if status is FollowUp.dropped
                                                               else None))

    # --- the workers --------------------------------------------------------------------------

    @rule()
    def work(self) -> None:
        """Everything pending in the outbox, as the workers would: match, notify, deliver."""
        for _ in range(5):
            ids = list(self.session.scalars(select(OutboxEvent.id).where(
                OutboxEvent.status == OutboxStatus.pending).order_by(OutboxEvent.id)))
            self.session.rollback()
            if not ids:
                return
            for event_id in ids:
                assert tasks.run_event(event_id) == "done", self.session.get(OutboxEvent, event_id).last_error

    # --- what must always hold ----------------------------------------------------------------

    @invariant()
    def matches_are_consistent(self) -> None:
        for match in self.matches():
            decided = {match.offer_decision, match.need_decision}
            if Decision.declined in decided:
                expected = {MatchStatus.declined}
            elif decided == {Decision.accepted}:
                expected = {MatchStatus.accepted}
            elif decided & {Decision.interested, Decision.accepted}:
                expected = {MatchStatus.interested}
            else:
                expected = {MatchStatus.proposed, MatchStatus.stale}
            assert match.status in expected, (match.id, match.status, decided)
            assert match.offer.kind is Kind.offer and match.need.kind is Kind.need, (match.id, "kinds")
            assert match.offer.firm_id != match.need.firm_id, (match.id, "a firm with itself")
            assert (match.accepted_at is not None) == (match.status is MatchStatus.accepted), match.id
        for exchange in self.session.scalars(select(Exchange)):
            assert exchange.match.status is MatchStatus.accepted, exchange.id

    @invariant()
    def identities_wait_for_both_acceptances(self) -> None:
        accepted_pairs = {frozenset((m.offer.firm_id, m.need.firm_id)) for m in self.matches()
                          if m.status is MatchStatus.accepted}
        for viewer, other in (("x", "y"), ("y", "x")):
            audience = visibility.audience(self.session, self.user(viewer))
            revealed = frozenset((self.firm_ids["x"], self.firm_ids["y"])) in accepted_pairs
            for listing in self.listings():
                if listing.firm_id == self.firm_ids[other]:
                    assert audience.shows_identity(listing) == revealed, (viewer, listing.id)
                    assert audience.shows_contact(listing) == revealed, (viewer, listing.id)
                    view = audience.view(listing)
                    assert (view.firm is not None) == revealed and (view.price_eur_per_unit is not None) == revealed

    @invariant()
    def every_decision_has_its_event_and_audit_row(self) -> None:
        keys = set(self.session.scalars(select(OutboxEvent.idempotency_key).where(
            OutboxEvent.kind == "match.decision")))
        audited = {(a.target_id, a.action) for a in self.session.scalars(
            select(AuditLog).where(AuditLog.target_type == "match"))}
        for match in self.matches():
            for side, decision in (("offer", match.offer_decision), ("need", match.need_decision)):
                if decision is not Decision.pending:
                    assert f"match.decision:{match.id}:{side}:{decision.value}" in keys, (match.id, side)
                    assert (match.id, f"match.{decision.value}") in audited, (match.id, side)

    @invariant()
    def nothing_sent_names_a_firm_too_early(self) -> None:
        revealed = any(m.status is MatchStatus.accepted for m in self.matches())
        messages = list(self.session.scalars(select(MailboxMessage).where(MailboxMessage.id > self.messages_seen)
                                             .order_by(MailboxMessage.id)))
        notices = list(self.session.scalars(select(Notification).where(Notification.id > self.notices_seen)
                                            .order_by(Notification.id)))
        for reader, other in (("x", "y"), ("y", "x")):
            secrets = [FIRMS[other][k] for k in ("name", "contact_name", "contact_email", "contact_phone")]
            reader_user = self.user(reader)
            texts = [f"{m.subject}\n{m.text}\n{m.html}" for m in messages if m.to == reader_user.email]
            texts += [json.dumps(n.payload, ensure_ascii=False) for n in notices if n.user_id == reader_user.id]
            if not revealed:
                for text in texts:
                    assert not any(secret in text for secret in secrets), (reader, text[:400])
        if messages:
            self.messages_seen = messages[-1].id
        if notices:
            self.notices_seen = notices[-1].id


def test_no_sequence_of_actions_reaches_an_inconsistent_state_or_reveals_a_firm_early(app) -> None:
    global APP
    APP = app
    run_state_machine_as_test(Lifecycle, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=30, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]))


def test_a_listing_with_matches_keeps_its_kind_one_without_may_change_it(session) -> None:
    """Found by the machine above: an offer edited into a need stayed the offer of its matches."""
    wipe(session)
    seller, buyer = new_firm(session, 51), new_firm(session, 52, commune_insee="53147")
    offer = listings.create_listing(session, seller, {"kind": "offer", "title": OFFERS[0], "quantity": 2,
                                                      "unit": "t", "frequency": "monthly"})
    need = listings.create_listing(session, buyer, {"kind": "need", "title": NEEDS[0], "quantity": 2, "unit": "t",
                                                    "frequency": "monthly"})
    session.add(Match(offer=offer, need=need, score=0.7, explanation={}))
    session.flush()
    try:
        listings.update_listing(session, offer, {"kind": "need", "title": "Sciure"})
        raise AssertionError("the kind changed")
    except ValidationError as exc:
        assert set(exc.errors) == {"kind"}
    draft = listings.create_listing(session, seller, {"kind": "offer", "title": "Copeaux", "quantity": 1,
                                                      "unit": "t", "frequency": "monthly"}, publish=False)
    assert listings.update_listing(session, draft, {"kind": "need"}).kind is Kind.need
    wipe(session)
