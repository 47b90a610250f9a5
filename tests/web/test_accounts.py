import hashlib
from datetime import timedelta

from sqlalchemy import func, select

from matchmaking.models import Firm, MailboxMessage, PasswordReset, Site, User, UserSession, utcnow
from tests.factories import luhn_siret, make_firm, make_user
from tests.web.conftest import PASSWORD, post, sign_in, text

COOKIE = "mm_session"


def _register_form(**overrides):
    return {
        "firm_name": "Cycles du Pail", "firm_siret": luhn_siret("8123456780001"), "firm_naf_code": "4764Z",
        "firm_postal_code": "53700", "firm_commune": "Villaines-la-Juhel", "firm_address": "2 rue du Pont",
        "firm_contact_phone": "02 43 00 00 00", "user_name": "Lucie Hervé", "user_email": "lucie@example.fr",
        "user_password": PASSWORD, "user_password_confirm": PASSWORD,
    } | overrides


def _cookie(client):
    cookie = client.get_cookie(COOKIE)
    return cookie.value if cookie else None


def test_registering_creates_the_firm_its_site_and_its_member_and_signs_in(client, session) -> None:
    response = post(client, "/register", _register_form())
    assert response.status_code == 302 and response.headers["Location"].endswith("/my")
    firm = session.scalar(select(Firm).where(Firm.name == "Cycles du Pail"))
    assert firm.naf_code == "47.64Z" and firm.contact_email == "lucie@example.fr"
    assert [s.commune.name for s in firm.sites] == ["Villaines-la-Juhel"]
    user = session.scalar(select(User).where(User.email == "lucie@example.fr"))
    assert user.firm_id == firm.id and user.role.value == "member"
    assert "Cycles du Pail" in text(client.get("/my"))


def test_the_commune_can_be_given_by_its_insee_code(client, session) -> None:
    response = post(client, "/register", _register_form(firm_postal_code="", firm_commune="53185"))
    assert response.status_code == 302
    firm = session.scalar(select(Firm).where(Firm.name == "Cycles du Pail"))
    assert firm.sites[0].commune_insee == "53185"


def test_bad_registration_names_each_field_in_french_keeps_the_input_and_writes_nothing(client, session) -> None:
    before = session.scalar(select(func.count()).select_from(Firm))
    response = post(client, "/register", _register_form(
        firm_siret="81234567800012", firm_postal_code="99999", user_password="court", user_password_confirm="x",
        user_email="pas-une-adresse",
    ))
    html = text(response)
    assert response.status_code == 422
    assert "Ce numéro SIRET n’est pas valide" in html or "SIRET" in html
    assert 'id="e-firm_siret"' in html and 'id="e-firm_postal_code"' in html
    assert 'id="e-user_password"' in html and 'id="e-user_email"' in html
    assert 'aria-invalid="true"' in html
    assert 'value="Cycles du Pail"' in html and 'value="pas-une-adresse"' in html
    assert 'value="court"' not in html and PASSWORD not in html  # passwords are never sent back
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Firm)) == before


def test_registration_refuses_a_siret_already_registered_and_an_email_in_use(client, session) -> None:
    firm = make_firm(session)
    make_user(session, firm, email="deja@example.fr")
    session.commit()
    html = text(post(client, "/register", _register_form(firm_siret=firm.siret, user_email="deja@example.fr")))
    assert 'id="e-firm_siret"' in html and 'id="e-user_email"' in html


def test_the_cookie_holds_only_a_secret_whose_hash_is_the_session_row(client, session) -> None:
    user = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, user)
    secret = _cookie(client)
    row = session.get(UserSession, hashlib.sha256(secret.encode()).hexdigest())
    assert row is not None and row.user_id == user.id and row.revoked_at is None
    assert len(secret) >= 40 and row.id != secret


def test_signing_out_revokes_the_session_so_a_copied_cookie_is_worthless(client, app, session) -> None:
    user = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, user)
    secret = _cookie(client)
    assert client.get("/my").status_code == 200
    assert post(client, "/sign-out", form_url="/my").status_code == 302
    session.expire_all()
    row = session.get(UserSession, hashlib.sha256(secret.encode()).hexdigest())
    assert row.revoked_at is not None
    thief = app.test_client()
    thief.set_cookie(COOKIE, secret)
    response = thief.get("/my")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_an_idle_session_expires(client, session) -> None:
    user = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, user)
    row = session.scalars(select(UserSession).where(UserSession.user_id == user.id)).one()
    row.last_seen_at = utcnow() - timedelta(days=60)
    session.commit()
    assert client.get("/my").status_code == 302


def test_a_wrong_password_says_nothing_about_which_part_was_wrong(client, session) -> None:
    user = make_user(session, make_firm(session))
    session.commit()
    wrong = text(post(client, "/sign-in", {"email": user.email, "password": "not the password"}))
    unknown = text(post(client, "/sign-in", {"email": "nobody@example.fr", "password": "whatever123"}))
    assert "Adresse e-mail ou mot de passe incorrect" in wrong
    assert "Adresse e-mail ou mot de passe incorrect" in unknown
    assert f'value="{user.email}"' in wrong


def test_sign_in_goes_back_to_the_page_asked_for_but_never_to_another_site(client, session) -> None:
    user = make_user(session, make_firm(session))
    session.commit()
    response = post(client, "/sign-in", {"email": user.email, "password": PASSWORD, "next": "/listings"})
    assert response.headers["Location"].endswith("/listings")
    post(client, "/sign-out", form_url="/my")
    response = post(client, "/sign-in", {"email": user.email, "password": PASSWORD, "next": "//evil.example/x"})
    assert "evil" not in response.headers["Location"]


def test_password_reset_by_mailed_link_then_the_link_dies_and_old_sessions_end(client, app, session) -> None:
    user = make_user(session, make_firm(session), email="reset@example.fr")
    session.commit()
    other_browser = app.test_client()
    sign_in(other_browser, user)
    response = post(client, "/password/forgot", {"email": "RESET@example.fr"})
    assert response.status_code == 200 and "est en route" in text(response)
    mail = session.scalars(select(MailboxMessage).where(MailboxMessage.to == "reset@example.fr")).one()
    assert "mot de passe" in mail.subject.lower()
    link = next(word for word in mail.text.split() if "/password/reset/" in word)
    path = link[link.index("/password/reset/"):]
    reset = session.scalars(select(PasswordReset)).one()
    assert path.rsplit("/", 1)[1] != reset.token_hash  # the link's token is not what is stored

    bad = post(client, path, {"password": "new password 1", "password_confirm": "different"})
    assert bad.status_code == 422 and 'id="e-password_confirm"' in text(bad)
    done = post(client, path, {"password": "new password 1", "password_confirm": "new password 1"})
    assert done.status_code == 302
    assert client.get(path).status_code == 404
    assert other_browser.get("/my").status_code == 302  # signed out everywhere else
    post(client, "/sign-out", form_url="/my")
    assert post(client, "/sign-in", {"email": user.email, "password": "new password 1"}).status_code == 302


def test_a_reset_for_an_unknown_address_answers_the_same_and_sends_nothing(client, session) -> None:
    response = post(client, "/password/forgot", {"email": "inconnu@example.fr"})
    assert response.status_code == 200 and "est en route" in text(response)
    assert session.scalar(select(func.count()).select_from(MailboxMessage)) == 0


def test_an_expired_reset_link_does_not_work(client, session) -> None:
    from matchmaking.services import accounts

    user = make_user(session, make_firm(session))
    reset = accounts.request_password_reset(session, user.email, link_for=lambda t: "/password/reset/" + t)
    token = [w for w in session.get(MailboxMessage, session.scalars(select(MailboxMessage.id)).one()).text.split()
             if "/password/reset/" in w][0].rsplit("/", 1)[1]
    reset.expires_at = utcnow() - timedelta(minutes=1)
    session.commit()
    assert client.get(f"/password/reset/{token}").status_code == 404


def test_changing_the_password_needs_the_current_one(client, session) -> None:
    user = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, user)
    bad = post(client, "/account", {"current_password": "wrong", "password": "another one 1",
                                    "password_confirm": "another one 1"})
    assert bad.status_code == 422 and 'id="e-current_password"' in text(bad)
    good = post(client, "/account", {"current_password": PASSWORD, "password": "another one 1",
                                     "password_confirm": "another one 1"})
    assert good.status_code == 302
    assert client.get("/my").status_code == 200  # this browser stays signed in


def test_pages_of_firms_need_signing_in(client) -> None:
    for path in ("/my", "/listings", "/listings/new", "/search", "/matches", "/firm", "/notifications"):
        response = client.get(path)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"], path


def test_a_new_site_is_placed_at_its_commune(client, session) -> None:
    user = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, user)
    response = post(client, "/firm/sites/new", {"name": "Dépôt", "postal_code": "53700", "commune": ""},
                    form_url="/firm/sites/new")
    assert response.status_code in (302, 422)
    if response.status_code == 422:  # several communes share 53700: the commune is asked for
        assert 'id="e-postal_code"' in text(response)
        response = post(client, "/firm/sites/new", {"name": "Dépôt", "postal_code": "53700",
                                                    "commune": "Villaines-la-Juhel"})
    assert response.status_code == 302
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Site).where(Site.name == "Dépôt")) == 1


def test_staff_without_a_firm_start_from_the_ccma_workspace(client, session) -> None:
    staff = make_user(session, role="facilitator")
    session.commit()
    response = post(client, "/sign-in", {"email": staff.email, "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/")
    response = client.get("/listings")
    assert response.status_code == 302 and "/staff/" in response.headers["Location"]


def test_the_pages_exist_in_english(client, session) -> None:
    user = make_user(session, make_firm(session))
    session.commit()
    sign_in(client, user)
    client.get("/my?lang=en")
    for path, words in (("/my", "I look for a material"), ("/listings/new", "What material?"),
                        ("/search", "Search the territory"), ("/matches", "My matches"),
                        ("/listings/import", "Import listings"), ("/firm", "Sites")):
        html = text(client.get(path))
        assert 'lang="en"' in html and words in html, path


def test_the_reset_link_uses_the_configured_address_not_the_host_header(client, app, session) -> None:
    make_user(session, make_firm(session), email="host@example.fr")
    session.commit()
    token_page = client.get("/password/forgot", headers={"Host": "evil.example"})
    from tests.web.conftest import TOKEN_RE

    csrf = TOKEN_RE.search(text(token_page)).group(1)
    client.post("/password/forgot", data={"email": "host@example.fr", "csrf_token": csrf},
                headers={"Host": "evil.example"})
    mail = session.scalars(select(MailboxMessage).where(MailboxMessage.to == "host@example.fr")).one()
    assert "evil.example" not in mail.text
    assert app.config["BASE_URL"].rstrip("/") + "/password/reset/" in mail.text
