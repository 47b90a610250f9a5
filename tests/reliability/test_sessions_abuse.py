"""Sessions and abuse: what tests/web/test_security.py and tests/web/test_accounts.py do not already hold.

* Signing out ends this browser's session on the server: a copied cookie is worthless for pages and
  forms alike, even with a form token taken before; other browsers stay signed in; signing in again
  starts a new session, and a form token from before signing in no longer works.
* Disabling an account ends its sessions and its API tokens at once; cookies are HttpOnly, SameSite.
* Rate limits count per connection: neither another e-mail address nor a forged X-Forwarded-For
  resets them; when Redis dies in the middle they go on in memory, without a single error.
* Guessing slows the guesser, per account and address, with a wait that doubles (429 and
  Retry-After), never the owner signing in from elsewhere or with a reset link; behind
  TRUSTED_PROXIES proxies, the address is the client's, not the proxy's.
* Without SECRET_KEY a deployment on a server database refuses to start; the cookies are Secure
  whenever the configured address is https://, however it was configured.
* Passwords: argon2id with at least OWASP's minimum (19 MiB, 2 passes); older, weaker hashes are
  upgraded at the next sign-in, on the web and through the API.
* Every CCMA staff access to what firms keep from each other leaves an audit row (pages, exports,
  the API, the mailbox); every staff route is either audited or declared free of such data.
(Security headers on every answer are checked by test_access_matrix.py, on each of its requests.)
"""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerificationError
from sqlalchemy import delete, select

from matchmaking import config
from matchmaking.app import create_app
from matchmaking.extensions import db, limiter
from matchmaking.models import AuditLog, Listing, SignInRecord, User, UserSession, utcnow
from matchmaking.services import accounts, sign_in, users
from tests.conftest import make_app
from tests.reliability.privacy_world import (
    PASSWORD,
    TOKEN_RE,
    Territory,
    browser,
    build,
    csrf_token,
    wipe,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def world(app) -> Any:
    territory = build(app)
    yield territory
    with app.test_request_context():
        wipe(db.session)
        db.session.execute(delete(SignInRecord))  # wrong passwords the test left behind
        db.session.commit()


def rows(app: Any, model: Any, *where: Any) -> list[Any]:
    with app.app_context():
        found = list(db.session.scalars(select(model).where(*where)))
        db.session.expunge_all()
        return found


def audit_rows(app: Any, action: str) -> list[AuditLog]:
    return rows(app, AuditLog, AuditLog.action == action)


# --- sessions ----------------------------------------------------------------------------------


def test_signing_out_ends_this_browser_only_and_its_old_form_tokens_die_with_it(app, world: Territory) -> None:
    mine, other_browser = browser(app, world, "member_a"), app.test_client()
    _reset_limits(app)
    response = other_browser.post("/sign-in", data={"csrf_token": csrf_token(other_browser),
                                                    "email": world.emails["member_a"], "password": PASSWORD})
    assert response.status_code == 302
    form_token = csrf_token(mine)
    assert mine.post("/sign-out", data={"csrf_token": form_token}).status_code == 302
    # Someone who copied the cookie (and a form token) before: nothing works any more.
    thief = browser(app, world, "member_a")
    response = thief.get("/my")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")
    with app.app_context():
        firm_name = db.session.get(Listing, world.ids["listing A"]).firm.name
    response = thief.post("/firm/edit", data={"csrf_token": form_token, "name": "Volée"})
    assert response.status_code in (302, 400)
    assert response.status_code == 400 or response.headers["Location"].startswith("/sign-in")
    with app.app_context():
        assert db.session.get(Listing, world.ids["listing A"]).firm.name == firm_name
    # The same person's other browser is still signed in: signing out is per browser.
    assert other_browser.get("/my").status_code == 200
    live = rows(app, UserSession, UserSession.revoked_at.is_(None))
    assert accounts.digest(world.cookies["member_a"]) not in {row.id for row in live}


def test_signing_in_starts_a_new_session_and_forgets_the_visitors_form_token(app, world: Territory) -> None:
    visitor = app.test_client()
    before = csrf_token(visitor)
    response = visitor.post("/sign-in", data={"csrf_token": before, "email": world.emails["member_a"],
                                              "password": PASSWORD})
    assert response.status_code == 302
    cookie = visitor.get_cookie(app.config["LOGIN_COOKIE_NAME"])
    assert cookie is not None and cookie.value not in world.cookies.values()
    assert cookie.http_only and cookie.same_site == "Lax" and cookie.path == "/"
    # A token planted before signing in (session fixation of forms) is refused afterwards.
    assert visitor.post("/notifications/read", data={"csrf_token": before}).status_code == 400
    assert visitor.post("/notifications/read", data={"csrf_token": csrf_token(visitor)}).status_code == 302


@pytest.mark.parametrize("how", ["SESSION_COOKIE_SECURE", "MATCHMAKING_BASE_URL"])
def test_the_login_cookie_is_secure_when_the_service_is_served_over_https(app, database_url, monkeypatch,
                                                                          how: str) -> None:
    if how == "MATCHMAKING_BASE_URL":  # the address alone says https: cookies follow
        monkeypatch.delenv("BASE_URL", raising=False)
        monkeypatch.setenv("MATCHMAKING_BASE_URL", "https://matieres.example.fr")
        secure = make_app(database_url)
    else:
        secure = make_app(database_url, SESSION_COOKIE_SECURE=True)
    assert secure.config["SESSION_COOKIE_SECURE"] is True
    with secure.app_context():
        limiter.reset()
        user = users.create_user(db.session, email="https@example.fr", password=PASSWORD, role="analyst")
        db.session.commit()
        user_id = user.id
    try:
        client = secure.test_client()
        client.post("/sign-in", data={"csrf_token": csrf_token(client), "email": "https@example.fr",
                                      "password": PASSWORD})
        cookie = client.get_cookie(secure.config["LOGIN_COOKIE_NAME"])
        assert cookie is not None and cookie.secure and cookie.http_only
    finally:
        with secure.app_context():
            db.session.delete(db.session.get(User, user_id))
            db.session.commit()


def test_disabling_an_account_ends_its_sessions_and_tokens_at_once(app, world: Territory) -> None:
    page, bearer = browser(app, world, "member_b"), {"Authorization": f"Bearer {world.tokens['member_b']}"}
    assert page.get("/my").status_code == 200 and page.get("/api/v1/me", headers=bearer).status_code == 200
    with app.app_context():
        db.session.scalar(select(User).where(User.email == world.emails["member_b"])).active = False
        db.session.commit()
    assert page.get("/my").headers["Location"].startswith("/sign-in")
    assert page.get("/api/v1/me", headers=bearer).status_code == 401
    response = page.post("/api/v1/auth/token", json={"email": world.emails["member_b"], "password": PASSWORD})
    assert response.status_code == 401


def test_a_session_ends_after_its_absolute_lifetime_even_when_used_every_day(app, world: Territory) -> None:
    with app.app_context():
        secret = world.cookies["member_a"]
        row = db.session.get(UserSession, accounts.digest(secret))
        created = row.created_at
        for day in (1, 10, 20, 29):
            assert accounts.load_session(db.session, secret, now=created + timedelta(days=day)) is not None
        assert accounts.load_session(db.session, secret, now=created + timedelta(days=31)) is None
        db.session.rollback()


# --- rate limits ---------------------------------------------------------------------------------


def _reset_limits(app: Any) -> None:
    with app.app_context():
        limiter.reset()


def test_limits_count_per_connection_whatever_the_address_tried_or_the_forwarded_header(app, world,
                                                                                        monkeypatch) -> None:
    # Lower limits than the service's (each refused password costs an argon2 hash): same mechanism.
    monkeypatch.setitem(app.config, "RATELIMIT_SIGN_IN", "4 per minute")
    monkeypatch.setitem(app.config, "RATELIMIT_REGISTER", "3 per minute")
    _reset_limits(app)
    client = app.test_client()
    statuses = []
    for n in range(5):
        token = csrf_token(client)
        statuses.append(client.post("/sign-in", data={"csrf_token": token, "email": f"guess{n}@example.fr",
                                                      "password": "wrong password"},
                                    headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code)
    assert statuses == [422] * 4 + [429]
    # The API's token endpoint has its own count, kept the same way.
    api = [client.post("/api/v1/auth/token", json={"email": f"g{n}@example.fr", "password": "x" * 12},
                       headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code for n in range(5)]
    assert api == [401] * 4 + [429]
    forgot = [client.post("/password/forgot", data={"csrf_token": csrf_token(client),
                                                     "email": f"who{n}@example.fr"}).status_code for n in range(4)]
    assert forgot == [200] * 3 + [429]
    _reset_limits(app)


STRANGER, OWNER, PROXY = "203.0.113.66", "198.51.100.4", "10.0.0.1"


def _web(client: Any, email: str, password: str, address: str, forwarded: str | None = None) -> Any:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post("/sign-in", data={"csrf_token": csrf_token(client), "email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address}, headers=headers)


def _api(client: Any, email: str, password: str, address: str, forwarded: str | None = None) -> Any:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post("/api/v1/auth/token", json={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address}, headers=headers)


def _retry_after(response: Any) -> int:
    return int(response.headers["Retry-After"])


def test_a_strangers_guesses_slow_the_stranger_and_never_stop_the_owner_from_another_address(app, world,
                                                                                          monkeypatch) -> None:
    monkeypatch.setitem(app.config, "RATELIMIT_SIGN_IN", "100 per minute")  # this test measures the waits
    clock = [utcnow()]
    monkeypatch.setattr(sign_in, "utcnow", lambda: clock[0])  # waits pass without sleeping
    _reset_limits(app)
    stranger, owner = app.test_client(), app.test_client()
    target = world.emails["member_a"]
    free, first_wait = app.config["SIGN_IN_FREE_FAILURES"], app.config["SIGN_IN_FIRST_WAIT_SECONDS"]
    assert free == 5
    # One count for the account from this address, on the web and the API, however the address is typed.
    statuses = [_web(stranger, email, "wrong password", STRANGER).status_code
                for email in (target, target.upper(), f"  {target} ")]
    statuses += [_api(stranger, target, "wrong password", STRANGER).status_code for _ in range(2)]
    assert statuses == [422] * 3 + [401] * 2
    # Now the stranger waits, answered at once; not even the right password is checked meanwhile.
    page = _web(stranger, target, PASSWORD, STRANGER)
    assert page.status_code == 429 and _retry_after(page) >= first_wait - 1
    assert "Réessayez dans 1 minute" in page.get_data(as_text=True)
    problem = _api(stranger, target, PASSWORD, STRANGER)
    assert problem.status_code == 429 and _retry_after(problem) >= first_wait - 1
    body = problem.get_json()
    assert body["type"].endswith("sign-in-delayed") and "Mot de passe oublié" in body["detail"]
    # The owner, from another address, signs in on the web and through the API as if nothing happened,
    # and a mistyped password there is only a mistype.
    assert _web(owner, target, "typo in it", OWNER).status_code == 422
    assert _web(owner, target, PASSWORD, OWNER).status_code == 302
    assert _api(owner, target, PASSWORD, OWNER).status_code == 200
    # Meanwhile the stranger still waits, and another account from the stranger's address is not held up.
    assert _api(stranger, target, PASSWORD, STRANGER).status_code == 429
    assert _api(stranger, world.emails["member_b"], PASSWORD, STRANGER).status_code == 200
    # The stranger persists, waiting out each wait, to 25 wrong passwords (once 20 locked the owner out).
    for _ in range(20):
        clock[0] += timedelta(seconds=app.config["SIGN_IN_MAX_WAIT_SECONDS"] + 1)
        assert _api(stranger, target, "wrong password", STRANGER).status_code == 401
        assert _api(stranger, target, "wrong password", STRANGER).status_code == 429
    assert _web(owner, target, PASSWORD, OWNER).status_code == 302
    assert _api(app.test_client(), target, PASSWORD, "192.0.2.200").status_code == 200  # a new address too
    _reset_limits(app)


def test_the_guessers_wait_doubles_with_each_wrong_password_after_the_free_ones(app, world, monkeypatch) -> None:
    _reset_limits(app)
    clock = [utcnow()]
    monkeypatch.setattr(sign_in, "utcnow", lambda: clock[0])  # the wait passes without sleeping
    guesser, target = app.test_client(), world.emails["member_b"]
    assert [_web(guesser, target, "wrong password", STRANGER).status_code for _ in range(5)] == [422] * 5
    waits = []
    for _ in range(4):
        refused = _web(guesser, target, "wrong password", STRANGER)
        assert refused.status_code == 429
        waits.append(_retry_after(refused))
        clock[0] += timedelta(seconds=waits[-1] + 1)  # the guesser waited as told...
        assert _web(guesser, target, "wrong password", STRANGER).status_code == 422  # ...and guessed wrong again
    # 30 s, 60 s, 120 s, 240 s (the per-address limit's own window may round the first ones up to a minute)
    assert all(wait >= 30 * 2**n - 1 for n, wait in enumerate(waits)), waits
    assert waits[3] > waits[2] > 60
    _reset_limits(app)


def test_a_password_reset_link_lets_the_owner_in_even_from_the_guessers_address(app, world) -> None:
    _reset_limits(app)
    office = app.test_client()  # the owner shares the stranger's address (one office, one NAT)
    target = world.emails["member_a"]
    for _ in range(5):
        _api(office, target, "wrong password", STRANGER)
    assert _web(office, target, PASSWORD, STRANGER).status_code == 429
    response = office.post(f"/password/reset/{world.reset_token}", environ_base={"REMOTE_ADDR": STRANGER},
                           data={"csrf_token": csrf_token(office), "password": "a brand new secret",
                                 "password_confirm": "a brand new secret"})
    assert response.status_code == 302 and office.get("/my").status_code == 200
    # The reset ended every wait on the account: the new password works from that address at once.
    assert _api(app.test_client(), target, "a brand new secret", STRANGER).status_code == 200
    _reset_limits(app)


def test_behind_a_trusted_proxy_sign_in_counts_per_forwarded_client_and_not_without_the_setting(
        app, world, database_url) -> None:
    target = world.emails["member_a"]
    # TRUSTED_PROXIES=1: the address the proxy saw (the last X-Forwarded-For) is the client's.
    proxied = make_app(database_url, TRUSTED_PROXIES=1)
    _reset_limits(proxied)
    stranger, owner = proxied.test_client(), proxied.test_client()
    for _ in range(5):
        _web(stranger, target, "wrong password", PROXY, forwarded=STRANGER)
    assert _web(stranger, target, PASSWORD, PROXY, forwarded=STRANGER).status_code == 429
    # A forged first hop changes nothing: the proxy appended the real one.
    assert _api(stranger, target, PASSWORD, PROXY, forwarded=f"192.0.2.1, {STRANGER}").status_code == 429
    assert _web(owner, target, PASSWORD, PROXY, forwarded=OWNER).status_code == 302
    ips = {row.ip for row in rows(proxied, UserSession, UserSession.ip.is_not(None))}
    assert OWNER in ips and PROXY not in ips
    # Without the setting (the default, 0) the header is not believed: every client is the proxy, and
    # the owner behind it shares the stranger's wait. This is why a deployment behind a proxy sets it.
    _reset_limits(app)
    stranger, owner = app.test_client(), app.test_client()
    for _ in range(5):
        _web(stranger, target, "wrong password", PROXY, forwarded=STRANGER)
    assert _web(owner, target, PASSWORD, PROXY, forwarded=OWNER).status_code == 429
    _reset_limits(app)


def test_an_account_guessed_at_from_many_addresses_gives_strangers_one_free_try(app, world) -> None:
    _reset_limits(app)
    target, client = world.emails["member_b"], app.test_client()
    assert _web(client, target, PASSWORD, OWNER).status_code == 302  # the owner's usual address
    for n in range(4):  # 4 × 5 wrong passwords: the account's alarm (20)
        for _ in range(5):
            _api(client, target, "wrong password", f"192.0.2.{n + 10}")
    newcomer = "192.0.2.99"
    assert _api(client, target, "wrong password", newcomer).status_code == 401
    assert _api(client, target, "wrong password", newcomer).status_code == 429  # after one wrong password
    # The owner's known address keeps its allowance: a mistype, then the right password.
    assert _web(client, target, "typo in it", OWNER).status_code == 422
    assert _web(client, target, PASSWORD, OWNER).status_code == 302
    # And from an address never seen, the right password at the first try still gets in.
    assert _api(client, target, PASSWORD, "192.0.2.200").status_code == 200
    _reset_limits(app)


# --- configuration that must not be left out --------------------------------------------------


def test_a_deployment_on_a_server_database_refuses_to_start_without_a_secret_key(monkeypatch, tmp_path) -> None:
    for name in ("SECRET_KEY", "MATCHMAKING_SECRET_KEY", "FLASK_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(config.MissingSecretKey, match="SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://matchmaking@db.invalid/matchmaking"})
    # The embedded mode (SQLite) and debugging keep the key generated once under instance/.
    embedded = {"SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(tmp_path / "db.sqlite3")}
    config.settle(embedded, str(tmp_path), debug=False)
    assert embedded["SECRET_KEY"] == (tmp_path / "secret_key").read_text().strip()
    debugging = {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://matchmaking@db.invalid/matchmaking"}
    config.settle(debugging, str(tmp_path), debug=True)
    assert debugging["SECRET_KEY"] == embedded["SECRET_KEY"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A process of its own (the limiter is one object per process), with a Redis of its own that it
# kills half-way: sign-in and the API's token endpoint must go on counting, in memory, without error.
REDIS_DIES = r"""
import re, subprocess, sys, time
import redis
from matchmaking import migrate
from matchmaking.app import create_app
from matchmaking.extensions import db

port = int(sys.argv[2])
server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no"], stdout=subprocess.DEVNULL)
probe = redis.Redis(port=port, socket_connect_timeout=1)
for _ in range(100):
    try:
        probe.ping()
        break
    except redis.exceptions.ConnectionError:
        time.sleep(0.05)
app = create_app({"TESTING": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": "sqlite:///" + sys.argv[1],
                  "REDIS_URL": f"redis://127.0.0.1:{port}/0", "RATELIMIT_KEY_PREFIX": "dies",
                  "RATELIMIT_SIGN_IN": "4 per minute"})
with app.app_context():
    migrate.upgrade(db.engine)
client = app.test_client()

tries = iter(range(100))  # another account each time: what is measured is the per-address limit

def web():
    page = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/sign-in", data={"csrf_token": token, "email": f"a{next(tries)}@example.fr",
                                         "password": "wrong password"}).status_code

def api():
    return client.post("/api/v1/auth/token", json={"email": f"a{next(tries)}@example.fr",
                                                   "password": "wrong pass"}).status_code

before = [web() for _ in range(2)] + [api() for _ in range(2)]
counted = len(probe.keys("*dies*"))
server.terminate()
server.wait(10)
after = [web() for _ in range(5)] + [api() for _ in range(5)]
print(" ".join(map(str, before)), "|", counted, "|", " ".join(map(str, after)))
"""


def test_when_redis_dies_half_way_limits_go_on_in_memory_without_errors(tmp_path) -> None:
    pytest.importorskip("redis")
    if subprocess.run(["which", "redis-server"], capture_output=True).returncode != 0:
        pytest.skip("redis-server is not installed")
    result = subprocess.run([sys.executable, "-c", REDIS_DIES, str(tmp_path / "db.sqlite3"), str(_free_port())],
                            cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    before, counted, after = result.stdout.strip().split("|")
    assert before.split() == ["422"] * 2 + ["401"] * 2
    assert int(counted) >= 2  # both limits were counted in Redis while it lived
    web, api = after.split()[:5], after.split()[5:]
    # Counting starts afresh in memory: four more tries (the limit), then refused; never a server error.
    assert web == ["422"] * 4 + ["429"] and api == ["401"] * 4 + ["429"], after


# --- passwords -----------------------------------------------------------------------------------

OWASP_MIN_MEMORY_KIB = 19 * 1024  # OWASP Password Storage Cheat Sheet; RFC 9106's profiles use more


def test_passwords_are_hashed_with_argon2id_and_current_parameters(app, world: Territory) -> None:
    hasher = users.hasher
    assert hasher.type is Type.ID
    assert hasher.memory_cost >= OWASP_MIN_MEMORY_KIB and hasher.time_cost >= 2 and hasher.parallelism >= 1
    stored = users.hash_password("a long enough secret")
    assert stored.startswith("$argon2id$v=19$")
    params = dict(part.split("=") for part in stored.split("$")[3].split(","))
    assert int(params["m"]) >= OWASP_MIN_MEMORY_KIB and int(params["t"]) >= 2
    assert not hasher.check_needs_rehash(stored)


@pytest.mark.parametrize("way", ["web", "api"])
def test_an_old_weaker_hash_is_upgraded_at_the_next_sign_in(app, world: Territory, way: str) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.I).hash(PASSWORD)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == world.emails["member_a"]))
        user.password_hash = weak
        db.session.commit()
    _reset_limits(app)
    client = app.test_client()
    if way == "web":
        response = client.post("/sign-in", data={"csrf_token": csrf_token(client), "email": world.emails["member_a"],
                                                 "password": PASSWORD})
        assert response.status_code == 302
    else:
        response = client.post("/api/v1/auth/token", json={"email": world.emails["member_a"], "password": PASSWORD})
        assert response.status_code == 200
    with app.app_context():
        stored = db.session.scalar(select(User.password_hash).where(User.email == world.emails["member_a"]))
    assert stored != weak and stored.startswith("$argon2id$") and not users.hasher.check_needs_rehash(stored)
    assert users.hasher.verify(stored, PASSWORD)
    with pytest.raises(VerificationError):
        users.hasher.verify(stored, "not the password")


# --- the audit log of staff access ---------------------------------------------------------------

# Staff routes that show or export what firms keep from each other, and the row each leaves.
AUDITED = {
    ("GET", "/staff/matches/<int(max=2147483647):match_id>"): "match.viewed",
    ("GET", "/staff/firms/<int(max=2147483647):firm_id>"): "firm.viewed",
    ("GET", "/staff/listings/<int(max=2147483647):listing_id>/edit"): "listing.viewed",
    ("POST", "/staff/listings/<int(max=2147483647):listing_id>/edit"): "listing.updated_on_behalf",
    ("POST", "/staff/firms/<int(max=2147483647):firm_id>/listings/new"): "listing.created_on_behalf",
    ("POST", "/staff/matches/<int(max=2147483647):match_id>/introduce"): "match.introduced",
    ("POST", "/staff/matches/<int(max=2147483647):match_id>/follow-up"): "match.follow_up",
    ("GET", "/staff/queue"): "matches.listed",
    ("GET", "/staff/follow-up"): "matches.listed",
    ("GET", "/staff/reminders"): "listings.listed",
    ("GET", "/staff/claims"): "claims.listed",
    ("POST", "/staff/claims/<int(max=2147483647):claim_id>/decision"): "firm.claim_accepted",
    ("POST", "/staff/firms/<int(max=2147483647):firm_id>/verified"): "firm.verified",
    ("GET", "/staff/stats/export.csv"): "stats.exported",
    ("GET", "/staff/stats/export.xlsx"): "stats.exported",
}
# Staff routes that show nothing a firm keeps from others (aggregates with small-count suppression,
# the firms' register, forms, the facilitator's own notes, assets).
NOT_CONFIDENTIAL = {
    ("GET", "/staff/"), ("GET", "/staff/firms"), ("GET", "/staff/stats"), ("GET", "/staff/static/<path:filename>"),
    ("GET", "/staff/firms/<int(max=2147483647):firm_id>/listings/new"),
    ("POST", "/staff/matches/<int(max=2147483647):match_id>/notes"),
}


def test_every_staff_route_is_audited_or_declared_free_of_confidential_data(app) -> None:
    staff_routes = {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.rule.startswith("/staff/")
                    for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert staff_routes == set(AUDITED) | NOT_CONFIDENTIAL, staff_routes ^ (set(AUDITED) | NOT_CONFIDENTIAL)


def _staff_request(client: Any, method: str, rule: str, world: Territory) -> Any:
    path = (rule.replace("<int(max=2147483647):match_id>", str(world.ids["match B"]))
            .replace("<int(max=2147483647):firm_id>", str(world.ids["firm A"]))
            .replace("<int(max=2147483647):listing_id>", str(world.ids["listing A"]))
            .replace("<int(max=2147483647):claim_id>", str(world.ids["claim B"])))
    if method == "GET":
        return client.get(path)
    forms = {
        "edit": {"title": "Titre corrigé", "quantity": "4", "unit": "t", "frequency": "monthly"},
        "new": {"kind": "offer", "title": "Palettes", "quantity": "3", "unit": "t", "frequency": "monthly",
                "publish": "on"},
        "introduce": {"message": "Je vous présente l'un à l'autre."},
        "follow-up": {"follow_up": "contacted"},
        "verified": {"verified": "on"},
        "decision": {"decision": "accept"},
    }
    data = forms[path.rsplit("/", 1)[1]] | {"csrf_token": csrf_token(client)}
    return client.post(path, data=data)


@pytest.mark.parametrize(("method", "rule"), sorted(AUDITED), ids=[f"{m} {r}" for m, r in sorted(AUDITED)])
def test_each_staff_access_to_confidential_data_leaves_an_audit_row(app, world: Territory, method: str,
                                                                    rule: str) -> None:
    action = AUDITED[(method, rule)]
    before = len(audit_rows(app, action))
    response = _staff_request(browser(app, world, "facilitator"), method, rule, world)
    assert response.status_code in (200, 302), response.get_data(as_text=True)[:300]
    response.close()
    made = audit_rows(app, action)[before:]
    with app.app_context():
        facilitator = db.session.scalar(select(User.id).where(User.email == world.emails["facilitator"]))
    assert len(made) == 1 and made[0].actor_id == facilitator, action


def test_analysts_exports_through_pages_and_the_api_are_audited(app, world: Territory) -> None:
    analyst = browser(app, world, "analyst")
    for path in ("/staff/stats/export.csv?from=2025-01&to=2025-12", "/staff/stats/export.xlsx"):
        response = analyst.get(path)
        assert response.status_code == 200
        response.close()
    bearer = {"Authorization": f"Bearer {world.tokens['analyst']}"}
    assert analyst.get("/api/v1/stats/summary?from=2025-01", headers=bearer).status_code == 200
    exported = audit_rows(app, "stats.exported")
    assert [row.details["format"] for row in exported] == ["csv", "xlsx", "json"]
    assert exported[0].details["from"] == "2025-01" and exported[2].details["endpoint"] == "api.stats_summary"


def test_staff_reading_an_anonymous_listing_in_full_through_the_api_or_a_page_is_audited(app, world) -> None:
    listing_id = world.ids["listing A"]
    for role in ("facilitator", "admin"):
        client, bearer = browser(app, world, role), {"Authorization": f"Bearer {world.tokens[role]}"}
        body = client.get(f"/api/v1/listings/{world.public_ids['listing A']}", headers=bearer).get_json()
        assert body["firm"]["name"] == "Fonderie Alpha"  # they introduce firms: they see who it is
        assert client.get("/api/v1/search?q=chambres", headers=bearer).status_code == 200
        assert "Fonderie Alpha" in client.get("/").get_data(as_text=True)
    disclosed = audit_rows(app, "listings.disclosed")
    assert len(disclosed) == 6 and all(listing_id in row.details["listing_ids"] for row in disclosed)
    # Analysts and firms see what a third firm sees: nothing disclosed, nothing to audit.
    for role in ("analyst", "member_b"):
        client, bearer = browser(app, world, role), {"Authorization": f"Bearer {world.tokens[role]}"}
        url = f"/api/v1/listings/{world.public_ids['listing A']}"
        assert client.get(url, headers=bearer).get_json()["firm"] is None
        assert "Fonderie Alpha" not in client.get("/").get_data(as_text=True)
    assert len(audit_rows(app, "listings.disclosed")) == 6


def test_an_administrator_reading_other_peoples_mail_is_audited(app, world: Territory) -> None:
    _reset_limits(app)
    visitor = app.test_client()
    visitor.post("/password/forgot", data={"csrf_token": csrf_token(visitor), "email": world.emails["member_b"]})
    admin = browser(app, world, "admin")
    page = admin.get("/boite-mail").get_data(as_text=True)
    assert world.emails["member_b"] in page
    viewed = audit_rows(app, "mailbox.viewed")
    assert len(viewed) == 1 and viewed[0].details["message_ids"]
    # A member reading their own mail is no access to anyone else's.
    browser(app, world, "member_b").get("/boite-mail")
    assert len(audit_rows(app, "mailbox.viewed")) == 1


def test_sign_in_form_tokens_are_per_session(app, world: Territory) -> None:
    one, two = app.test_client(), app.test_client()
    token = TOKEN_RE.search(one.get("/sign-in").get_data(as_text=True))
    assert token is not None
    response = two.post("/sign-in", data={"csrf_token": token.group(1), "email": world.emails["member_a"],
                                          "password": PASSWORD})
    assert response.status_code == 400  # another browser's token is worth nothing here



