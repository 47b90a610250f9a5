"""Two worlds: what a third firm can learn of an anonymous listing is what its fields say, nothing more.

Two databases are built the same way, and differ only in what the visibility rules hide from a third
firm (services/visibility.py):
  * firm A's identity: name, SIRET, NAF code (its sector), contact person, e-mail and phone, members;
  * the exact place of A's site (address and coordinates, within the same commune);
  * the prices of A's anonymous offers;
  * volumes nobody published to firm C: A's draft and paused listings (content and quantities) and the
    exchanges A recorded with its partner B.
Firm A lists anonymously only; B has accepted a match with A (so B knows A), a facilitator
introduced A to C, A expressed interest in one of C's needs. Firm C then makes every request it can
make — pages, the JSON API, search with each distance filter and ranking, its match pages, two
decisions — and receives its e-mails (embedded mailbox) and webhook calls, the worker handlers called
directly as a worker would. A CCMA analyst and a visitor not signed in, who see what any third
firm sees, make their requests too. Every answer, e-mail and webhook body must be byte-identical
in both worlds once the volatile parts (form tokens, timestamps) are normalised. Ids need no
normalising: both worlds create the same rows in the same order, and draw their random public ids
from the same seeded generator.
"""

from __future__ import annotations

import difflib
import os
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from matchmaking import migrate, models
from matchmaking.extensions import db
from matchmaking.models import (
    Listing,
    ListingStatus,
    MailboxMessage,
    Match,
    NotifyMode,
    OutboxEvent,
    OutboxStatus,
    Role,
    User,
)
from matchmaking.services import (
    accounts,
    decisions,
    delivery,
    facilitation,
    listings,
    matching,
    notifications,
    seeding,
    sites,
    tokens,
)
from tests.conftest import _postgres_database, make_app
from tests.reliability.privacy_world import TOKEN_RE, add_user, new_firm
from workers import tasks

# Villaines-la-Juhel (53271): firm A's commune. Its centroid stands in for A's site for anyone else.
CENTROID = (48.33941, -0.29201)
SECRETS = [
    {"name": "Fonderie Zéphyr", "siret": 3, "naf_code": "16.10A", "contact_name": "Zoé Zéphyr",
     "contact_email": "zoe@zephyr.example.fr", "contact_phone": "02 43 11 11 11", "member": "zoe",
     "address": "12 route de Javron", "lat": 48.3551, "lon": -0.2602, "prices": (0, 45.5),
     "draft": ("Boues de peinture", 7), "paused": 120, "exchanges": (1.5, 2.0)},
    {"name": "Plasturgie Yéti", "siret": 4, "naf_code": "22.11Z", "contact_name": "Yves Yéti",
     "contact_email": "yves@yeti.example.fr", "contact_phone": "06 99 99 99 99", "member": "yves",
     "address": "ZA des Grands Prés", "lat": 48.3197, "lon": -0.3311, "prices": (12, 3.2),
     "draft": ("Solvants usagés à détruire", 900), "paused": 3, "exchanges": (40, 0.2)},
]
# Points and radii the third firm searches around: the commune, and each world's true site of A.
NEAR = ["", "53271", "53147", f"{CENTROID[0]},{CENTROID[1]}", "48.3551,-0.2602", "48.3197,-0.3311"]
RADII = ["", "1", "3", "25", "60"]
QUERIES = ["chambres à air", "sciure de bois", "caoutchouc"]


@dataclass
class Recording:
    """What the third firm saw in one world, request by request."""

    answers: list[tuple[str, str]] = field(default_factory=list)
    owner_view: str = ""

    def add(self, label: str, text: str) -> None:
        self.answers.append((label, text))


TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[+-]\d{2}:\d{2}|Z)?"
                       r"|\d{2}/\d{2}/\d{4} \d{2}:\d{2}")


def normalise(text: str) -> str:
    text = TOKEN_RE.sub('name="csrf_token" value="CSRF"', text)
    return TIMESTAMP.sub("<timestamp>", text)


@contextmanager
def fresh_database() -> Iterator[str]:
    if os.environ.get("TEST_DATABASE_URL"):
        made = _postgres_database()
        try:
            yield next(made)
        finally:
            next(made, None)
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/world.sqlite3"


def run_outbox(app: Any) -> int:
    """Carry out every pending outbox row, oldest first, as the workers would."""
    done = 0
    with app.app_context():
        for _ in range(10):
            ids = list(db.session.scalars(select(OutboxEvent.id).where(
                OutboxEvent.status == OutboxStatus.pending).order_by(OutboxEvent.id)))
            db.session.rollback()
            if not ids:
                break
            for event_id in ids:
                assert tasks.run_event(event_id) == "done", event_id
                done += 1
    return done


def pair(session: Any, offer: Listing, need: Listing) -> Match:
    """The engine's match of these two listings (made here when the engine did not pair them)."""
    found = session.scalar(select(Match).where(Match.offer_id == offer.id, Match.need_id == need.id))
    if found is None:
        found = Match(offer=offer, need=need, score=0.5, distance_km=None, explanation={})
        session.add(found)
        session.flush()
    return found


def build(app: Any, secret: dict[str, Any]) -> dict[str, Any]:
    """The territory of both worlds, with `secret` filling what only firm A and its partners may know."""
    ids: dict[str, Any] = {}
    with app.test_request_context():
        session = db.session
        firm_a = new_firm(session, secret["siret"], name=secret["name"], naf_code=secret["naf_code"],
                          contact_name=secret["contact_name"], contact_email=secret["contact_email"],
                          contact_phone=secret["contact_phone"], address=secret["address"])
        site = firm_a.main_site
        site.lat, site.lon = secret["lat"], secret["lon"]  # the true place, as a geocoded address gives it
        firm_b = new_firm(session, 11, name="Dalles Bocage", naf_code="22.19Z", commune_insee="53147")
        firm_c = new_firm(session, 12, name="Haras du Maine", naf_code="01.43Z", commune_insee="53147",
                          contact_email="contact@haras.example.fr")
        firm_d = new_firm(session, 13, name="Cycles Durand", naf_code="47.64Z", commune_insee="53271")
        sites.add_site(session, firm_c, {"name": "Prés", "commune_insee": "53017"})
        member_a = add_user(session, f"{secret['member']}@a.example.fr", firm=firm_a, name=secret["contact_name"])
        member_b = add_user(session, "berthe@bocage.example.fr", firm=firm_b, name="Berthe")
        member_c = add_user(session, "camille@haras.example.fr", firm=firm_c, name="Camille")
        digest_reader = add_user(session, "claude@haras.example.fr", firm=firm_c, name="Claude")
        # C hears of every match, instantly (Camille) and in a daily digest (Claude).
        member_c.notify_min_score = digest_reader.notify_min_score = 0.0
        digest_reader.notify_mode = NotifyMode.daily
        facilitator = add_user(session, "fanny@ccma.example.fr", Role.facilitator, name="Fanny Facilitatrice")
        delivery.create_endpoint(session, firm_c, "http://127.0.0.1:9/hooks/haras", allow_private=True)
        delivery.create_endpoint(session, firm_a, "http://127.0.0.1:9/hooks/a", allow_private=True)

        def listing(firm: Any, publish: bool = True, **data: Any) -> Listing:
            base = {"unit": "t", "frequency": "monthly"}
            return listings.create_listing(session, firm, base | data, publish=publish)

        public_tubes = listing(firm_d, kind="offer", title="Chambres à air de vélo usagées", quantity=0.2,
                               low_code="16 01 03", price_eur_per_unit=0)
        tubes = listing(firm_a, kind="offer", title="Chutes de chambres à air", description="Butyle, propres.",
                        low_code="16 01 03", quantity=2, anonymous=True, price_eur_per_unit=secret["prices"][0])
        sawdust = listing(firm_a, kind="offer", title="Sciure et copeaux de bois", quantity=10, anonymous=True,
                          price_eur_per_unit=secret["prices"][1])
        draft_title, draft_quantity = secret["draft"]
        listing(firm_a, publish=False, kind="need", title=draft_title, quantity=draft_quantity, anonymous=True)
        paused = listing(firm_a, publish=False, kind="offer", title="Palettes cassées",
                         quantity=secret["paused"], anonymous=True)
        listings.set_status(session, paused, ListingStatus.paused)
        rubber_b = listing(firm_b, kind="need", title="Caoutchouc à broyer pour dalles", quantity=1)
        rubber_c = listing(firm_c, kind="need", title="Caoutchouc pour tapis d'écurie", quantity=1,
                           radius_km=60)
        bedding_c = listing(firm_c, kind="need", title="Litière pour chevaux", quantity=4, radius_km=60)
        listing(firm_c, kind="offer", title="Fumier de cheval", quantity=30)
        session.commit()
        ids.update(tubes=tubes.id, sawdust=sawdust.id, rubber_c=rubber_c.id, bedding_c=bedding_c.id,
                   public_tubes=public_tubes.id, member_c=member_c.id, member_a=member_a.id)
    run_outbox(app)

    with app.test_request_context():
        session = db.session
        tubes, sawdust = session.get(Listing, ids["tubes"]), session.get(Listing, ids["sawdust"])
        rubber_c, bedding_c = session.get(Listing, ids["rubber_c"]), session.get(Listing, ids["bedding_c"])
        rubber_b = session.scalar(select(Listing).where(Listing.title.like("Caoutchouc à broyer%")))
        member_a, member_b = session.get(User, ids["member_a"]), session.scalar(
            select(User).where(User.email == "berthe@bocage.example.fr"))
        facilitator = session.scalar(select(User).where(User.role == Role.facilitator))
        # B and A agree, and record what changed hands: B now knows A, C still does not.
        deal = pair(session, tubes, rubber_b)
        decisions.accept(session, deal, member_b)
        decisions.accept(session, deal, member_a)
        for quantity in secret["exchanges"]:
            decisions.record_exchange(session, deal, member_a, {"quantity": quantity, "unit": "t",
                                                                "date": date.today().isoformat()})
        # A shows interest in C's need; a facilitator introduces A's sawdust to C's horses.
        decisions.express_interest(session, pair(session, tubes, rubber_c), member_a)
        introduced = pair(session, sawdust, bedding_c)
        facilitation.introduce(session, introduced, facilitator, "Bonjour, je vous mets en relation.")
        session.commit()
        ids["deal"], ids["introduced"] = deal.public_id, introduced.public_id
        ids["c_tubes"], ids["tubes_public"] = pair(session, tubes, rubber_c).public_id, tubes.public_id
        member_c = session.get(User, ids["member_c"])
        ids["cookie"], _row = accounts.start_session(session, member_c)
        ids["token"] = tokens.issue(session, member_c, "two worlds")
        analyst = add_user(session, "alain@ccma.example.fr", Role.analyst, name="Alain Analyste")
        ids["analyst_token"] = tokens.issue(session, analyst, "two worlds")
        ids["cookie_a"], _row = accounts.start_session(session, member_a)
        session.commit()
    run_outbox(app)
    return ids


def third_firm_requests(app: Any, ids: dict[str, Any], record: Recording, webhooks: list[tuple[str, str]]) -> None:
    client = app.test_client()
    client.set_cookie(app.config["LOGIN_COOKIE_NAME"], ids["cookie"])
    bearer = {"Authorization": f"Bearer {ids['token']}"}
    with app.app_context():
        listing_ids = list(db.session.scalars(select(Listing.public_id).order_by(Listing.id)))
        matches = [(row[0], row[1]) for row in db.session.execute(select(Match.public_id, Match.id).order_by(Match.id))]
        db.session.rollback()

    def get(path: str, **kwargs: Any) -> None:
        response = client.get(path, **kwargs)
        body = response.get_data(as_text=True)
        extra = " ".join(f"{h}={response.headers[h]}" for h in ("Location", "X-Total-Count") if h in response.headers)
        record.add(f"GET {path}", f"{response.status_code} {extra}\n{normalise(body)}")
        response.close()

    def sweep(searches: bool = True) -> None:
        for path in ("/", "/?kind=offer", "/?kind=need", "/?page=2", "/my", "/listings", "/matches", "/firm",
                     "/notifications", "/account", "/listings/import/template.csv", "/staff/", "/staff/firms"):
            get(path)
        for status in ("proposed", "interested", "accepted", "declined"):
            get(f"/matches?status={status}")
        for listing_id in listing_ids:
            get(f"/listings/{listing_id}")
            get(f"/listings/{listing_id}/edit")
            get(f"/api/v1/listings/{listing_id}", headers=bearer)
            get(f"/api/v1/listings/{listing_id}/matches", headers=bearer)
        for match_id, number in matches:
            get(f"/matches/{match_id}")
            get(f"/staff/matches/{number}")  # CCMA pages go by the internal number
            get(f"/api/v1/matches/{match_id}", headers=bearer)
            get(f"/api/v1/matches/{match_id}/exchanges", headers=bearer)
        for query in ("", "?kind=offer", "?family=rubber", "?mine=1", "?page=2&per_page=2"):
            get(f"/api/v1/listings{query}", headers=bearer)
        for query in ("", "?status=interested", "?status=proposed", "?status=accepted"):
            get(f"/api/v1/matches{query}", headers=bearer)
        get("/api/v1/me", headers=bearer)
        if not searches:
            return
        for q in QUERIES:
            for radius in ("10", "25", "50", "100", "200"):
                for kind in ("", "offer"):
                    get(f"/search?q={q}&radius_km={radius}&kind={kind}")
            for near in NEAR:
                for radius in RADII:
                    if radius and not near:
                        continue  # a radius needs a place (refused alike in both worlds, tested elsewhere)
                    for kind in ("", "offer"):
                        params = {"q": q, "near": near, "radius_km": radius, "kind": kind}
                        query = "&".join(f"{k}={v}" for k, v in params.items() if v)
                        get(f"/api/v1/search?{query}", headers=bearer)
        get("/search?family=rubber&radius_km=50")
        get("/api/v1/search?family=wood", headers=bearer)

    sweep()
    # C acts: interest in the introduced pair through its page, acceptance of A's tubes through the API.
    page = client.get(f"/matches/{ids['introduced']}").get_data(as_text=True)
    token = TOKEN_RE.search(page)
    assert token is not None
    response = client.post(f"/matches/{ids['introduced']}/decision",
                           data={"decision": "interested", "csrf_token": token.group(1)})
    record.add("POST decision", f"{response.status_code} {response.headers.get('Location')}")
    response = client.post(f"/api/v1/matches/{ids['c_tubes']}/accept", headers=bearer)
    record.add("POST accept", f"{response.status_code}\n{normalise(response.get_data(as_text=True))}")
    run_outbox(app)
    with app.app_context():
        notifications.queue_digests(db.session, NotifyMode.daily)
        db.session.commit()
    run_outbox(app)
    sweep(searches=False)  # after C's decisions: its pages and matches again (search ranks did not move)
    with app.app_context():
        emails = db.session.scalars(select(MailboxMessage).where(MailboxMessage.to.like("%@haras.example.fr"))
                                    .order_by(MailboxMessage.id)).all()
        for message in emails:
            record.add(f"e-mail to {message.to}", normalise(f"{message.subject}\n{message.text}\n{message.html}"))
            get(f"/boite-mail?m={message.id}")
        db.session.rollback()
    get("/boite-mail")
    for url, body in webhooks:
        if url.endswith("/haras"):
            record.add(f"webhook {url}", normalise(body))

    # A CCMA analyst and a visitor who is not signed in see what any third firm sees.
    analyst, visitor = {"Authorization": f"Bearer {ids['analyst_token']}"}, app.test_client()
    for listing_id in listing_ids:
        get(f"/api/v1/listings/{listing_id}", headers=analyst)
        response = visitor.get(f"/listings/{listing_id}")
        record.add(f"visitor GET /listings/{listing_id}", f"{response.status_code} {response.headers.get('Location')}")
    for query in ("/api/v1/listings", "/api/v1/listings?kind=offer", "/api/v1/search?q=chambres+à+air&near=53147",
                  "/api/v1/search?q=sciure&near=53271&radius_km=3", "/api/v1/matches", "/api/v1/me"):
        get(query, headers=analyst)
    for path in ("/", "/?kind=offer", "/?lang=en"):
        response = visitor.get(path)
        record.add(f"visitor GET {path}", normalise(response.get_data(as_text=True)))

    # Sanity: the worlds do differ, for those allowed to see it (A itself sees its name and price).
    owner = app.test_client()
    owner.set_cookie(app.config["LOGIN_COOKIE_NAME"], ids["cookie_a"])
    record.owner_view = owner.get(f"/listings/{ids['tubes_public']}").get_data(as_text=True)


def run_world(secret: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Recording:
    record = Recording()
    webhooks: list[tuple[str, str]] = []

    def post_webhook(endpoint: Any, msg_id: str, body: bytes, settings: Any, timestamp: int | None = None) -> int:
        webhooks.append((endpoint.url, f"{msg_id}\n{body.decode()}"))
        return 200

    monkeypatch.setattr(delivery, "post_webhook", post_webhook)
    monkeypatch.setattr(models, "secrets", random.Random(2026))  # the same public ids in both worlds
    with fresh_database() as url:
        app = make_app(url, WEBHOOK_ALLOW_PRIVATE=True)
        try:
            with app.app_context():
                migrate.upgrade(db.engine)
                seeding.load_reference(db.session)
                db.session.commit()
            matching.reset_index()
            ids = build(app, secret)
            third_firm_requests(app, ids, record, webhooks)
        finally:
            matching.reset_index()
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    return record


def differences(first: Recording, second: Recording) -> list[str]:
    out = []
    assert [label for label, _ in first.answers] == [label for label, _ in second.answers]
    for (label, one), (_, two) in zip(first.answers, second.answers, strict=True):
        if one != two:
            diff = difflib.unified_diff(one.splitlines(), two.splitlines(), "world 1", "world 2", n=1, lineterm="")
            out.append(f"{label}:\n" + "\n".join(list(diff)[:30]))
    return out


def test_a_third_firm_sees_the_same_bytes_in_both_worlds(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    worlds = [run_world(secret, monkeypatch) for secret in SECRETS]
    found = differences(*worlds)
    requests = sum(1 for label, _ in worlds[0].answers if label.startswith(("GET", "POST", "visitor")))
    messages = sum(1 for label, _ in worlds[0].answers if label.startswith(("e-mail", "webhook")))
    with capsys.disabled():
        print(f"\ntwo worlds: {requests} requests, {messages} e-mails and webhook calls compared, "
              f"{len(found)} difference(s)")
    assert not found, "\n\n".join(found[:15]) + f"\n\n{len(found)} difference(s) in all"
    # The comparison is not vacuous: A's own page differs between the worlds, and C was told things.
    assert SECRETS[0]["name"] in worlds[0].owner_view and SECRETS[1]["name"] in worlds[1].owner_view
    assert messages >= 2
    for label, text in worlds[0].answers:
        for secret in SECRETS:
            for key in ("name", "contact_email", "contact_phone", "address"):
                assert secret[key] not in text, (label, key)



def test_the_engine_sees_an_anonymous_listing_without_its_site_or_sector(session) -> None:
    firm = new_firm(session, 21, naf_code="16.10A")
    site = firm.main_site
    site.lat, site.lon = CENTROID[0] + 0.02, CENTROID[1] + 0.03
    hidden = listings.create_listing(session, firm, {"kind": "offer", "title": "Sciure", "quantity": 1,
                                                     "unit": "t", "frequency": "monthly", "anonymous": True})
    shown = listings.create_listing(session, firm, {"kind": "offer", "title": "Copeaux", "quantity": 1,
                                                    "unit": "t", "frequency": "monthly"})
    record = matching.to_record(hidden)
    assert (record.lat, record.lon, record.sector_naf) == (*CENTROID, None)
    record = matching.to_record(shown)
    assert (record.lat, record.lon, record.sector_naf) == (site.lat, site.lon, "16.10A")
