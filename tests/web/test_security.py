"""CSRF, rate limits (with Redis down too), security headers, no inline script, friendly errors."""

import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import make_app
from tests.factories import make_firm, make_user
from tests.web.conftest import PASSWORD, post, sign_in, text

TEMPLATES = Path(__file__).resolve().parents[2] / "matchmaking" / "web" / "templates"


def test_a_form_without_its_token_is_refused_with_a_page_that_says_why(client, session) -> None:
    user = make_user(session, make_firm(session))
    session.commit()
    response = client.post("/sign-in", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400 and "Le formulaire a expiré" in text(response)
    sign_in(client, user)
    for path in ("/sign-out", "/listings/new", "/firm/edit", "/notifications/read", "/account"):
        assert client.post(path, data={}).status_code == 400, path


def test_the_json_api_is_not_subject_to_form_tokens(client) -> None:
    response = client.post("/api/v1/does-not-exist", json={})
    assert response.status_code != 400 or "csrf" not in response.get_data(as_text=True).lower()
    assert response.status_code in (401, 404, 405)


def test_security_headers_on_every_page(client) -> None:
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "default-src 'self'" in csp and "https://tile.openstreetmap.org" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert client.get("/nope").headers["X-Content-Type-Options"] == "nosniff"


def test_templates_hold_no_inline_script_style_or_handler() -> None:
    for path in TEMPLATES.rglob("*.html"):
        source = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", source), path
        assert not re.search(r"\sstyle=", source), path
        assert not re.search(r"\son[a-z]+=", source), path
        assert "<style" not in source, path


def test_the_tile_server_is_configurable_and_allowed_by_the_policy(database_url) -> None:
    app = make_app(database_url, MAP_TILE_URL="https://{s}.tiles.example.org/{z}/{x}/{y}.png")
    response = app.test_client().get("/")
    assert "https://*.tiles.example.org" in response.headers["Content-Security-Policy"]


def test_sign_in_is_rate_limited_with_a_friendly_page(client, session) -> None:
    # Wrong passwords from one address at many accounts (guesses at one account wait sooner:
    # tests/reliability/test_sessions_abuse.py).
    user = make_user(session, make_firm(session))
    session.commit()
    statuses = [post(client, "/sign-in", {"email": f"guess{n}@example.fr", "password": "wrong password"}).status_code
                for n in range(11)]
    assert statuses[:10] == [422] * 10 and statuses[10] == 429
    assert "Trop de tentatives" in text(post(client, "/sign-in", {"email": user.email, "password": "x"}))
    assert client.get("/sign-in").status_code == 200  # reading the form is never limited


def test_a_right_password_does_not_use_up_the_addresss_allowance(client, session) -> None:
    # Colleagues behind one office address: only wrong passwords count.
    people = [make_user(session, make_firm(session)) for _ in range(12)]
    session.commit()
    for user in people:
        assert post(client, "/sign-in", {"email": user.email, "password": PASSWORD}).status_code == 302
        assert post(client, "/sign-out", form_url="/my").status_code == 302


def test_registration_is_rate_limited(client) -> None:
    statuses = [post(client, "/register", {"firm_name": ""}).status_code for _ in range(6)]
    assert statuses[:5] == [422] * 5 and statuses[5] == 429


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The limiter is one object per process, configured by the app that initialises it: an app with
# another Redis runs in its own process so that it does not reconfigure this one's.
SIGN_IN_ELEVEN_TIMES = """
import re, sys
from matchmaking import migrate
from matchmaking.app import create_app
from matchmaking.extensions import db
app = create_app({"TESTING": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": "sqlite:///" + sys.argv[1],
                  "REDIS_URL": sys.argv[2], "RATELIMIT_KEY_PREFIX": sys.argv[3]})
with app.app_context():
    migrate.upgrade(db.engine)
client = app.test_client()
statuses = []
for n in range(11):  # another account each time: what is measured is the per-address limit
    page = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    statuses.append(client.post("/sign-in", data={"csrf_token": token, "email": f"a{n}@example.fr",
                                                  "password": "wrong password"}).status_code)
print(" ".join(map(str, statuses)))
"""


def _sign_in_eleven_times(tmp_path, redis_url: str, prefix: str) -> list[int]:
    result = subprocess.run(
        [sys.executable, "-c", SIGN_IN_ELEVEN_TIMES, str(tmp_path / "db.sqlite3"), redis_url, prefix],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [int(s) for s in result.stdout.split()]


def test_with_redis_down_limits_fall_back_to_memory_instead_of_failing(tmp_path) -> None:
    statuses = _sign_in_eleven_times(tmp_path, f"redis://127.0.0.1:{_free_port()}/0", "down")
    assert statuses == [422] * 10 + [429]


def test_with_redis_up_limits_are_counted_in_redis(tmp_path) -> None:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/15", socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    try:
        assert _sign_in_eleven_times(tmp_path, "redis://127.0.0.1:6379/15", prefix) == [422] * 10 + [429]
        assert client.keys(f"*{prefix}*")
    finally:
        for key in client.keys(f"*{prefix}*"):
            client.delete(key)


def test_unknown_pages_get_a_friendly_404_in_french(client) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "Page introuvable" in text(response)
    assert client.get("/no/such/page?lang=en").status_code == 404


def test_an_unexpected_error_gets_a_friendly_500(database_url) -> None:
    app = make_app(database_url, TESTING=False, PROPAGATE_EXCEPTIONS=False)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    response = app.test_client().get("/boom")
    assert response.status_code == 500 and "Un problème est survenu" in text(response)
    assert "RuntimeError" not in text(response)


@pytest.mark.parametrize("path", ["/sign-in", "/register", "/password/forgot", "/"])
def test_public_pages_render_in_both_languages(client, path) -> None:
    assert 'lang="fr"' in text(client.get(path))
    assert 'lang="en"' in text(client.get(path + "?lang=en"))
