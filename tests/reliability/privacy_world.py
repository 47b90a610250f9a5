"""A small territory for the access-control and privacy tests: three firms, their members and the
CCMA staff, with listings, sites, matches, live browser sessions and API tokens for every role.

The rows are built through the services (like the pages and the API do) and wiped completely,
so a module can rebuild the same territory as often as a request changes it.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from matchmaking.extensions import db, limiter
from matchmaking.models import (
    ApiToken,
    AuditLog,
    Base,
    Decision,
    Exchange,
    FacilitationNote,
    Firm,
    FirmClaim,
    ImportJob,
    ImportStatus,
    Listing,
    MailboxMessage,
    Match,
    MatchStatus,
    Notification,
    OutboxEvent,
    PasswordReset,
    Role,
    Site,
    User,
    UserSession,
    WebhookEndpoint,
    utcnow,
)
from matchmaking.services import (
    accounts,
    firms,
    listings,
    matching,
    preferences,
    sites,
    tokens,
    users,
    verification,
)
from tests.factories import luhn_siret

PASSWORD = "correct horse battery"
ROLES = ("anonymous", "member_a", "member_b", "facilitator", "analyst", "admin")
STAFF_ROLES = ("facilitator", "analyst", "admin")
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')

# Every row a test may leave behind, children first.
ROW_MODELS: tuple[type[Base], ...] = (
    MailboxMessage, Notification, FacilitationNote, Exchange, Match, OutboxEvent, AuditLog, ApiToken,
    UserSession, PasswordReset, WebhookEndpoint, ImportJob, Listing, FirmClaim, User, Site, Firm,
)


@functools.cache
def password_hash() -> str:
    """One argon2 hash for every account of the territory (hashing costs a third of a second)."""
    return users.hash_password(PASSWORD)


def wipe(session: Any) -> None:
    """Remove every row but the reference data; the engine index forgets them too."""
    session.rollback()
    for model in ROW_MODELS:
        session.execute(delete(model))
    session.commit()
    matching.reset_index()


def add_user(session: Any, email: str, role: Role = Role.member, firm: Firm | None = None,
             name: str | None = None) -> User:
    user = User(email=email, password_hash=password_hash(), role=role, firm=firm, name=name)
    session.add(user)
    session.flush()
    return user


def new_firm(session: Any, n: int, **overrides: Any) -> Firm:
    data = {"name": f"Entreprise {n}", "siret": luhn_siret(f"{880000000 + n:09d}0001"), "naf_code": "22.19Z",
            "commune_insee": "53271"} | overrides
    return firms.register_firm(session, data)


@dataclass
class Territory:
    """Ids of the objects each ownership case names, and the credentials of every role."""

    ids: dict[str, int] = field(default_factory=dict)
    public_ids: dict[str, str] = field(default_factory=dict)  # listings' and matches', as URLs name them
    emails: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    reset_token: str = ""
    unsubscribe_token: str = ""
    confirm_token: str = ""


def build(app: Any) -> Territory:
    """Firms A and B (one member each) and C (their partner), and the three staff roles.

    Case "A" objects belong to firm A, case "B" objects to firm B:
    listing A: A's published, anonymous, priced offer;  listing B: B's draft offer;
    match A: A's offer × C's need, accepted by both;  match B: C's offer × B's need, nobody acted;
    site A / site B: each firm's second site (not its main one, no listing on it);
    firm A / firm B: the firms themselves (CCMA pages);
    claim A / claim B: someone without a firm asking the CCMA to join firm A / firm B.
    job A: A's import, done, with its report;  job B: B's import, queued.
    """
    world = Territory()
    with app.test_request_context():
        session = db.session
        wipe(session)
        firm_a = new_firm(session, 1, name="Fonderie Alpha", contact_phone="02 43 00 00 01")
        firm_b = new_firm(session, 2, name="Brasserie Bêta", commune_insee="53147")
        firm_c = new_firm(session, 3, name="Cartonnerie Gamma", commune_insee="53017")
        site_a = sites.add_site(session, firm_a, {"name": "Dépôt", "commune_insee": "53271", "address": "2 rue X"})
        site_b = sites.add_site(session, firm_b, {"name": "Entrepôt", "commune_insee": "53147"})
        people = {
            "member_a": add_user(session, "a@alpha.example.fr", firm=firm_a, name="Anne Alpha"),
            "member_b": add_user(session, "b@beta.example.fr", firm=firm_b, name="Bruno Bêta"),
            "member_c": add_user(session, "c@gamma.example.fr", firm=firm_c, name="Chloé Gamma"),
            "facilitator": add_user(session, "facilitator@ccma.example.fr", Role.facilitator, name="Fanny"),
            "analyst": add_user(session, "analyst@ccma.example.fr", Role.analyst, name="Alain"),
            "admin": add_user(session, "admin@ccma.example.fr", Role.admin, name="Adèle"),
        }
        listing_a = listings.create_listing(session, firm_a, {
            "kind": "offer", "title": "Chutes de chambres à air", "low_code": "16 01 03", "quantity": 2,
            "unit": "t", "frequency": "monthly", "anonymous": True, "price_eur_per_unit": 30})
        listing_b = listings.create_listing(session, firm_b, {
            "kind": "offer", "title": "Drêches de brasserie", "quantity": 5, "unit": "t",
            "frequency": "weekly"}, publish=False)
        need_b = listings.create_listing(session, firm_b, {
            "kind": "need", "title": "Cartons d'emballage", "quantity": 1, "unit": "t", "frequency": "monthly"})
        need_c = listings.create_listing(session, firm_c, {
            "kind": "need", "title": "Caoutchouc à broyer", "quantity": 1, "unit": "t", "frequency": "monthly"})
        offer_c = listings.create_listing(session, firm_c, {
            "kind": "offer", "title": "Cartons usagés", "quantity": 3, "unit": "t", "frequency": "monthly"})
        now = utcnow()
        match_a = Match(offer=listing_a, need=need_c, score=0.8, distance_km=12.0,
                        explanation={"distance_km": 12.0}, offer_decision=Decision.accepted,
                        need_decision=Decision.accepted, status=MatchStatus.accepted, accepted_at=now)
        match_b = Match(offer=offer_c, need=need_b, score=0.7, distance_km=20.0, explanation={"distance_km": 20.0})
        session.add_all([match_a, match_b])
        claim_a = verification.file_claim(session, add_user(session, "x@claims.example.fr", name="Xavier"), firm_a)
        claim_b = verification.file_claim(session, add_user(session, "y@claims.example.fr", name="Yasmine"), firm_b)
        # Import jobs: A's finished with its report, B's still waiting for a worker.
        job_a = ImportJob(firm_id=firm_a.id, user_id=people["member_a"].id, filename="annonces-alpha.csv",
                          content=None, valid_only=False, locale="fr", status=ImportStatus.done,
                          report={"filename": "annonces-alpha.csv", "rows": 1, "created": 1, "updated": 0,
                                  "skipped": 0, "written": True, "file_errors": [], "warnings": [],
                                  "row_errors": [], "more_row_errors": 0, "bad_lines": 0})
        job_b = ImportJob(firm_id=firm_b.id, user_id=people["member_b"].id, filename="annonces-beta.csv",
                          content=b"type;titre\n", valid_only=False, locale="fr", status=ImportStatus.queued)
        session.add_all([job_a, job_b])
        session.flush()
        world.ids = {
            "listing A": listing_a.id, "listing B": listing_b.id, "match A": match_a.id, "match B": match_b.id,
            "site A": site_a.id, "site B": site_b.id, "firm A": firm_a.id, "firm B": firm_b.id,
            "claim A": claim_a.id, "claim B": claim_b.id,
            "job A": job_a.id, "job B": job_b.id,
        }
        world.public_ids = {"listing A": listing_a.public_id, "listing B": listing_b.public_id,
                            "match A": match_a.public_id, "match B": match_b.public_id}
        for role, user in people.items():
            world.emails[role] = user.email
            secret, _row = accounts.start_session(session, user)
            world.cookies[role] = secret
            world.tokens[role] = tokens.issue(session, user, "tests")
        world.reset_token = secrets.token_urlsafe(32)
        session.add(PasswordReset(user=people["member_a"], token_hash=accounts.digest(world.reset_token),
                                  created_at=now, expires_at=now + timedelta(hours=2)))
        world.unsubscribe_token = preferences.unsubscribe_token(people["member_a"], app.config["SECRET_KEY"])
        world.confirm_token = verification.confirmation_token(people["member_a"], app.config["SECRET_KEY"])
        session.commit()
        limiter.reset()
    return world


def browser(app: Any, world: Territory, role: str) -> Any:
    """A browser of this role, signed in with its own server-side session (none for the visitor)."""
    client = app.test_client()
    if role != "anonymous":
        client.set_cookie(app.config["LOGIN_COOKIE_NAME"], world.cookies[role])
    return client


def csrf_token(client: Any) -> str:
    """The form token of this browser's session, read from a page as a browser would."""
    page = client.get("/password/forgot").get_data(as_text=True)
    found = TOKEN_RE.search(page)
    assert found, "no form token on /password/forgot"
    return found.group(1)


# Columns that change on reads (last seen, last used, audit of a look, notices read): not state.
_VOLATILE = {"last_seen_at", "last_used_at", "read_at"}


def fingerprint(app: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the territory's owners care about, to show that a refused request changed nothing."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with app.app_context():
        for model in ROW_MODELS:
            if model is AuditLog:
                continue
            table = model.__table__
            columns = [c for c in table.columns if c.name not in _VOLATILE]
            rows = db.session.execute(select(*columns).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(row) for row in rows]
        db.session.rollback()
    return out


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]
