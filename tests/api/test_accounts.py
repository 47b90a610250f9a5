import hashlib

from sqlalchemy import select

from matchmaking.cli import users_create
from matchmaking.models import ApiToken, Firm, User
from tests.factories import luhn_siret


def registration(**firm: object) -> dict:
    return {
        "firm": {"name": "Scierie du Mont", "siret": luhn_siret("9876543210001"), "naf_code": "16.10A",
                 "commune_insee": "53271"} | firm,
        "user": {"email": "gerant@scierie.example.fr", "password": "une phrase assez longue", "name": "Léa"},
    }


def test_registering_creates_the_firm_its_user_and_a_working_token(api, session) -> None:
    r = api.post("/api/v1/auth/register", json=registration())
    assert r.status_code == 201
    body = r.get_json()
    assert set(body) == {"firm_id", "user_id", "token"}
    me = api.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.get_json()["firm"]["id"] == body["firm_id"] and me.get_json()["role"] == "member"
    assert session.get(Firm, body["firm_id"]).main_site.commune_insee == "53271"


def test_a_firm_may_give_its_postal_code_and_commune_name(api) -> None:
    data = registration(commune_insee=None, postal_code="53700", commune="Villaines-la-Juhel")
    assert api.post("/api/v1/auth/register", json=data).status_code == 201


def test_registration_names_every_bad_field_of_both_parts(api, session) -> None:
    data = registration(siret="12345678901234", commune_insee="99999")
    data["user"] = {"email": "not-an-email", "password": "short"}
    r = api.post("/api/v1/auth/register", json=data)
    assert r.status_code == 422
    errors = r.get_json()["errors"]
    assert {"firm.siret", "firm.commune_insee", "user.email", "user.password"} <= set(errors)
    assert session.scalar(select(Firm).where(Firm.name == "Scierie du Mont")) is None


def test_registration_refuses_a_siret_already_registered_and_unknown_fields(api) -> None:
    assert api.post("/api/v1/auth/register", json=registration()).status_code == 201
    again = registration()
    again["user"]["email"] = "autre@scierie.example.fr"
    r = api.post("/api/v1/auth/register", json=again)
    assert r.status_code == 422 and "firm.siret" in r.get_json()["errors"]
    odd = registration(capital=10_000)
    odd["user"]["role"] = "admin"
    r = api.post("/api/v1/auth/register", json=odd)
    assert r.status_code == 422
    assert {"firm.capital", "user.role"} <= set(r.get_json()["errors"])


def test_a_token_is_given_for_the_right_password_only(api, make_actor) -> None:
    actor = make_actor()
    r = api.post("/api/v1/auth/token", json={"email": actor.user.email, "password": "correct horse battery"})
    assert r.status_code == 200 and r.get_json()["token"].startswith("mmk_")
    for email, password in ((actor.user.email, "wrong password!"), ("nobody@example.fr", "correct horse battery")):
        r = api.post("/api/v1/auth/token", json={"email": email, "password": password})
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_only_the_hash_of_a_token_is_stored(api, session) -> None:
    token = api.post("/api/v1/auth/register", json=registration()).get_json()["token"]
    hashes = session.scalars(select(ApiToken.token_hash)).all()
    assert hashlib.sha256(token.encode()).hexdigest() in hashes
    assert all(token not in h for h in hashes)


def test_a_revoked_token_no_longer_opens_the_api(api, make_actor) -> None:
    actor = make_actor()
    assert api.delete("/api/v1/auth/token", headers=actor.headers).status_code == 204
    assert api.get("/api/v1/me", headers=actor.headers).status_code == 401


def test_a_disabled_account_loses_its_tokens(api, session, make_actor) -> None:
    actor = make_actor()
    actor.user.active = False
    session.commit()
    assert api.get("/api/v1/me", headers=actor.headers).status_code == 401


def test_staff_created_by_the_cli_sign_in_but_cannot_act_for_a_firm(app, api, session) -> None:
    result = app.test_cli_runner().invoke(
        users_create, ["--email", "anim@ccma.example.fr", "--password", "une phrase secrete", "--role", "facilitator"]
    )
    assert result.exit_code == 0, result.output
    token = api.post("/api/v1/auth/token", json={"email": "anim@ccma.example.fr", "password": "une phrase secrete"})
    headers = {"Authorization": f"Bearer {token.get_json()['token']}"}
    me = api.get("/api/v1/me", headers=headers).get_json()
    assert me["role"] == "facilitator" and me["firm"] is None
    r = api.post("/api/v1/listings", headers=headers,
                 json={"kind": "offer", "title": "Sciure", "quantity": 1, "unit": "t", "frequency": "once"})
    assert r.status_code == 403
    assert api.get("/api/v1/listings?mine=1", headers=headers).get_json() == []
    assert api.get("/api/v1/matches", headers=headers).get_json() == []
    assert session.scalar(select(User).where(User.email == "anim@ccma.example.fr")).firm_id is None


def test_password_guessing_is_slowed_down_with_429_problems(api, app, make_actor) -> None:
    actor = make_actor()
    free = app.config["SIGN_IN_FREE_FAILURES"]
    answers = [api.post("/api/v1/auth/token", json={"email": actor.user.email, "password": "guess guess guess"})
               for _ in range(free + 1)]
    assert [r.status_code for r in answers] == [401] * free + [429]
    assert answers[-1].get_json()["status"] == 429
    assert answers[-1].get_json()["type"].endswith("sign-in-delayed")
    assert int(answers[-1].headers["Retry-After"]) >= app.config["SIGN_IN_FIRST_WAIT_SECONDS"] - 1


def test_guessing_many_accounts_from_one_address_is_limited_too(api, app) -> None:
    per_minute = int(app.config["RATELIMIT_SIGN_IN"].split()[0])
    answers = [api.post("/api/v1/auth/token", json={"email": f"nobody{n}@example.fr", "password": "guess guess"})
               for n in range(per_minute + 1)]
    assert [r.status_code for r in answers] == [401] * per_minute + [429]


def test_an_idle_token_gets_401_like_a_revoked_one(api, session, make_actor) -> None:
    from datetime import timedelta

    from matchmaking.models import utcnow
    from matchmaking.services import tokens

    actor = make_actor()
    assert api.get("/api/v1/me", headers=actor.headers).status_code == 200
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == tokens.hash_token(actor.token)))
    row.last_used_at = utcnow() - timedelta(days=tokens.IDLE_DAYS + 1)
    session.commit()
    r = api.get("/api/v1/me", headers=actor.headers)
    assert r.status_code == 401 and r.content_type.startswith("application/problem+json")


def test_a_registered_account_must_confirm_its_address_before_publishing(api, session) -> None:
    body = api.post("/api/v1/auth/register", json=registration()).get_json()
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert api.get("/api/v1/me", headers=headers).get_json()["email_confirmed"] is False
    offer = {"kind": "offer", "title": "Sciure de chêne", "quantity": 3, "unit": "t", "frequency": "monthly"}
    refused = api.post("/api/v1/listings", json=offer, headers=headers)
    assert refused.status_code == 403
    problem = refused.get_json()
    assert problem["type"].endswith("email-not-confirmed") and "Confirmez d'abord votre adresse e-mail" in \
        problem["detail"]
    draft = api.post("/api/v1/listings", json=offer | {"status": "draft"}, headers=headers)
    assert draft.status_code == 201
    listing_id = draft.get_json()["id"]
    assert api.patch(f"/api/v1/listings/{listing_id}", json={"status": "published"},
                     headers=headers).status_code == 403
    # The link e-mailed at registration opens the way.
    from matchmaking.models import MailboxMessage

    mail = session.scalar(select(MailboxMessage).where(MailboxMessage.to == "gerant@scierie.example.fr")
                          .order_by(MailboxMessage.id.desc()).limit(1))
    path = "/" + mail.text.split("/account/confirm/", 1)[1].split()[0]
    assert api.client.get("/account/confirm" + path).status_code == 200
    assert api.get("/api/v1/me", headers=headers).get_json()["email_confirmed"] is True
    assert api.patch(f"/api/v1/listings/{listing_id}", json={"status": "published"},
                     headers=headers).status_code == 200


def test_a_siret_already_registered_points_to_the_ccma(api) -> None:
    assert api.post("/api/v1/auth/register", json=registration()).status_code == 201
    again = registration()
    again["user"]["email"] = "autre@scierie.example.fr"
    message = api.post("/api/v1/auth/register", json=again).get_json()["errors"]["firm.siret"]
    assert message.startswith("Cette entreprise est déjà inscrite") and "CCMA" in message
