"""In a real browser (Debian's Chromium, headless): a buyer registers, declares a need, finds the
bike shop's inner tubes, sees the match and its explanation, says it is interested; the shop
accepts, the buyer accepts, and each sees the other's contact. Screenshots of the main pages at
375 px and at desktop width go to test-output/screenshots/.

The server is the app in a thread on a free port, over a scratch SQLite database with the
reference data and the demo territory. Matching runs through the same outbox handlers the worker
calls (`relay.handler_for`), stepped by the test instead of a worker process.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 860}
SELLER_EMAIL = "cycles.avaloirs@example.fr"  # the demo bike shop
BUYER_EMAIL = "atelier@patins-du-maine.example.fr"
BUYER_PASSWORD = "patins anti-glisse 53"

# Its server runs on a scratch SQLite file whatever the suite's database: the PostgreSQL pass skips it.
pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]


def _browser_or_skip() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not shutil.which(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests need playwright and {CHROMIUM} under CI")
        pytest.skip(f"no playwright or no {CHROMIUM}")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def work(app: Any) -> int:
    """One pass of what the worker does for pending events (matching, notices); returns how many."""
    from matchmaking.extensions import db
    from matchmaking.services import outbox, relay

    done = 0
    with app.app_context():
        while True:
            events = [e for e in outbox.due(db.session) if not e.kind.startswith("deliver.")]
            if not events:
                return done
            for event in events:
                handler = relay.handler_for(event.kind)
                note = handler(db.session, event) if handler else None
                outbox.record_success(event, note=note)
                done += 1
            db.session.commit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    sync_playwright = _browser_or_skip()
    from werkzeug.serving import make_server

    from matchmaking import migrate
    from matchmaking.app import create_app
    from matchmaking.extensions import db
    from matchmaking.services import matching, seeding

    path = tmp_path_factory.mktemp("browser") / "app.sqlite3"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "browser-test",
                      # Generous limits, not disabled: the limiter is one per process and other tests need it on.
                      "RATELIMIT_SIGN_IN": "1000 per minute", "RATELIMIT_REGISTER": "1000 per minute",
                      "MAP_TILE_URL": "https://tile.openstreetmap.org/{z}/{x}/{y}.png"})
    with app.app_context():
        migrate.upgrade(db.engine)
        seeding.load_reference(db.session)
        seeding.load_demo(db.session)
        db.session.commit()
        matching.reset_index()
    work(app)
    port = _free_port()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield f"http://127.0.0.1:{port}", (app, sync_playwright)
    finally:
        httpd.shutdown()
        thread.join(5)


def _shoot(page: Any, name: str, full: bool = True) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def _problems(page: Any, sink: list[str]) -> None:
    """Collect what would show a broken page: script errors and CSP refusals (tiles offline are fine)."""

    def on_console(message: Any) -> None:
        text = message.text
        deliberate = "status of 422" in text  # a form answering bad input
        offline = "tile.openstreetmap.org" in text or "ERR_" in text
        if message.type == "error" and not deliberate and not offline:
            sink.append(text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: sink.append(str(exc)))


def _sign_in(page: Any, base: str, email: str, password: str) -> None:
    page.goto(base + "/sign-in")
    page.locator("#f-email").fill(email)
    page.locator("#f-password").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r".*/my$"))


def test_a_buyer_finds_the_inner_tubes_and_both_firms_get_in_touch(server: tuple[str, Any]) -> None:
    base, (app, sync_playwright) = server
    from matchmaking.extensions import db
    from matchmaking.models import Listing, MailboxMessage, Match, MatchStatus

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        buyer_ctx = browser.new_context(viewport=PHONE, locale="fr-FR", device_scale_factor=1, is_mobile=True,
                                        has_touch=True)
        page = buyer_ctx.new_page()
        _problems(page, problems)

        # Home, then registration with a mistake first: the form says what is wrong and keeps the rest.
        page.goto(base + "/")
        assert "Mont des Avaloirs" in page.title()
        page.get_by_role("link", name="Inscrire mon entreprise").first.click()
        page.locator("#f-firm_name").fill("Patins du Maine")
        page.locator("#f-firm_siret").fill("12345678901234")
        page.locator("#f-firm_postal_code").fill("53700")
        page.locator("#f-firm_commune").fill("Villaines-la-Juhel")
        page.locator("#f-user_name").fill("Jeanne Patin")
        page.locator("#f-user_email").fill(BUYER_EMAIL)
        page.locator("#f-user_password").fill(BUYER_PASSWORD)
        page.locator("#f-user_password_confirm").fill(BUYER_PASSWORD)
        page.locator("#f-firm_contact_phone").fill("02 43 03 00 00")
        page.get_by_role("button", name="M’inscrire").click()
        siret_error = page.locator("#e-firm_siret")
        assert siret_error.is_visible() and "SIRET" in siret_error.inner_text()
        assert page.locator("#f-firm_name").input_value() == "Patins du Maine"
        _shoot(page, "register-errors-375")
        page.locator("#f-firm_siret").fill("73282932000074")  # a valid (Luhn) SIRET
        page.locator("#f-user_password").fill(BUYER_PASSWORD)
        page.locator("#f-user_password_confirm").fill(BUYER_PASSWORD)
        page.get_by_role("button", name="M’inscrire").click()
        page.wait_for_url(re.compile(r".*/my$"))
        assert "Patins du Maine" in page.content()

        # The banner asks to confirm the address; the link e-mailed (kept in the local mailbox) does it.
        assert "Confirmez votre adresse e-mail" in page.content()
        _shoot(page, "confirm-banner-375")
        with app.app_context():
            mail = db.session.scalar(select(MailboxMessage).where(MailboxMessage.to == BUYER_EMAIL))
            path = "/account/confirm/" + mail.text.split("/account/confirm/", 1)[1].split()[0]
        page.goto(base + path)
        assert "Votre adresse e-mail est confirmée" in page.content()
        page.get_by_role("link", name="Continuer").click()
        page.wait_for_url(re.compile(r".*/my$"))
        assert "Confirmez votre adresse e-mail" not in page.content()

        # Declaring the need: the title brings waste codes and a family, one is picked.
        page.get_by_role("link", name="Je cherche une matière").click()
        page.locator("#f-title").fill("Caoutchouc de chambres à air pour patins de palettes")
        page.locator("#suggestions li button").first.wait_for(timeout=10_000)
        page.locator("#suggestions li button").first.click()
        assert page.locator("#f-low_code").input_value()
        page.locator("#f-quantity").fill("40")
        page.locator("#f-unit").select_option("kg")
        page.locator("#f-frequency").select_option("monthly")
        page.locator("#f-description").fill("Chutes de caoutchouc propres, pour découper des patins anti-glisse.")
        page.locator("#f-radius_km").fill("40")
        _shoot(page, "listing-form-375")
        page.get_by_role("button", name="Publier").click()
        page.wait_for_url(re.compile(r".*/listings/[a-z2-9]{16}$"))
        assert "Caoutchouc de chambres à air" in page.content()

        # The worker matches the new need (same handlers as the Celery worker).
        assert work(app) >= 1
        with app.app_context():
            need = db.session.scalar(select(Listing).where(Listing.title.like("Caoutchouc de chambres%")))
            offer = db.session.scalar(select(Listing).where(Listing.title == "Chutes de chambres à air"))
            match = db.session.scalar(select(Match).where(Match.need_id == need.id, Match.offer_id == offer.id))
            assert match is not None, "the engine should pair the need with the bike shop's inner tubes"
            match_id, need_id, match_number = match.public_id, need.public_id, match.id

        # Search: the inner tubes are in the list and on the map (markers even without tiles).
        page.get_by_role("link", name="Rechercher").first.click()
        page.locator("#f-q").fill("chambres à air")
        page.locator("#f-kind").select_option("offer")
        page.get_by_role("button", name="Rechercher").click()
        page.wait_for_selector("#map[data-ready]")
        results = page.locator(".results-list > li")
        assert results.count() >= 1
        hit = results.filter(has_text="Chutes de chambres à air")
        assert hit.count() == 1 and " km" in hit.inner_text()
        assert page.locator(".leaflet-marker-icon").count() >= 2  # my site and at least one result
        _shoot(page, "search-375")

        # The match, explained in plain French; the buyer says it is interested.
        hit.get_by_role("link", name="Voir la mise en relation").click()
        page.wait_for_url(re.compile(rf".*/matches/{match_id}$"))
        why = page.locator(".why.big").inner_text()
        assert "km" in why and ("même" in why or "filière" in why or "mots communs" in why), why
        assert "02 43 85 42 82" not in page.content()  # the shop's phone: not before both accept
        _shoot(page, "match-375")
        page.get_by_role("button", name="Je suis intéressé").click()
        assert "Votre intérêt est transmis" in page.content()
        page.goto(base + "/matches")
        _shoot(page, "inbox-375")

        # The bike shop hears of it, opens the match and accepts.
        work(app)
        seller_ctx = browser.new_context(viewport=DESKTOP, locale="fr-FR")
        seller = seller_ctx.new_page()
        _problems(seller, problems)
        _sign_in(seller, base, SELLER_EMAIL, "avaloirs-demo")
        assert seller.locator(".menu .count").count() == 1  # unread notifications in the header
        seller.goto(base + f"/matches/{match_id}")
        seller.get_by_role("button", name="Accepter et partager nos coordonnées").click()
        assert "En attente de l’autre entreprise" in seller.content()
        work(app)

        # The buyer accepts too: both now see each other's contact.
        page.goto(base + f"/matches/{match_id}")
        page.get_by_role("button", name="Accepter et partager nos coordonnées").click()
        contact = page.locator("#contact").inner_text()
        assert "Cycles du Mont des Avaloirs" in contact and "02 43 85 42 82" in contact
        _shoot(page, "match-accepted-375")
        seller.goto(base + f"/matches/{match_id}")
        seller_contact = seller.locator("#contact").inner_text()
        assert "Patins du Maine" in seller_contact and BUYER_EMAIL in seller_contact
        _shoot(seller, "match-accepted-desktop")
        with app.app_context():
            assert db.session.get(Match, match_number).status is MatchStatus.accepted

        # Keyboard: the first Tab reaches the skip link, which is visible when focused.
        page.goto(base + "/")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"

        _screenshots(browser, base, buyer_ctx, need_id)
        browser.close()
    assert not problems, problems


def _screenshots(browser: Any, base: str, buyer_ctx: Any, need_id: str) -> None:
    """The main pages at 375 px and at desktop width, signed in as the buyer."""
    state = buyer_ctx.storage_state()
    search = "/search?q=chambres+%C3%A0+air&kind=offer&radius_km=50"
    pages = {"home": "/", "register": "/register", "listing-form": "/listings/new?kind=offer",
             "search": search, "inbox": "/matches", "my-space": "/my", "import": "/listings/import",
             "listing-detail": f"/listings/{need_id}", "firm": "/firm", "notifications": "/notifications"}
    for width_name, viewport in (("375", PHONE), ("desktop", DESKTOP)):
        anonymous = browser.new_context(viewport=viewport, locale="fr-FR")
        signed_in = browser.new_context(viewport=viewport, locale="fr-FR", storage_state=state)
        for name, path in pages.items():
            page = (anonymous if name in ("home", "register") else signed_in).new_page()
            page.goto(base + path)
            if name == "search":
                page.wait_for_selector("#map[data-ready]")
            if name == "listing-form":
                page.locator("#f-title").fill("huiles de vidange usagées")
                page.locator("#suggestions li button").first.wait_for(timeout=10_000)
                page.locator("#suggestions li button").first.click()
            _shoot(page, f"{name}-{width_name}")
            overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
            assert not overflow, f"{name} scrolls sideways at {width_name}"
            page.close()
        match_link = signed_in.new_page()
        match_link.goto(base + "/matches")
        match_link.locator(".inbox h3 a").first.click()
        _shoot(match_link, f"match-detail-{width_name}")
        anonymous.close()
        signed_in.close()
