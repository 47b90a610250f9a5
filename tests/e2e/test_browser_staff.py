"""In headless Chromium (Debian's /usr/bin/chromium): a CCMA analyst signs in, opens the statistics
of the demo territory, changes the period, downloads the spreadsheet; the dashboard, its printed
form and a phone view are written to test-output/screenshots/.

The server is the app in a thread on a free port, over a scratch SQLite database with the reference
data, the demo territory and its 18 months of history.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
ANALYST = "analyste@ccma.example.fr"
PASSWORD = "tableau de bord 2026"

pytestmark = pytest.mark.browser


def _playwright_or_skip() -> Any:
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


@pytest.fixture(scope="module")
def staff_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    sync_playwright = _playwright_or_skip()
    from werkzeug.serving import make_server

    from matchmaking import migrate
    from matchmaking.app import create_app
    from matchmaking.extensions import db
    from matchmaking.services import demo_history, seeding, users

    path = tmp_path_factory.mktemp("browser-staff") / "app.sqlite3"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": "browser-staff",
                      "RATELIMIT_SIGN_IN": "1000 per minute"})
    with app.app_context():
        migrate.upgrade(db.engine)
        seeding.load_reference(db.session)
        seeding.load_demo(db.session)
        demo_history.load_history(db.session, today=datetime.now(UTC).date())
        users.create_user(db.session, email=ANALYST, password=PASSWORD, role="analyst", name="Analyste CCMA")
        db.session.commit()
    httpd = make_server("127.0.0.1", _free_port(), app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", sync_playwright
    finally:
        httpd.shutdown()
        thread.join(5)


def test_an_analyst_reads_the_dashboard_changes_the_period_and_downloads_it(staff_server: Any,
                                                                             tmp_path: Path) -> None:
    base, sync_playwright = staff_server
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR", accept_downloads=True)
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))

        page.goto(base + "/sign-in")
        page.locator("#f-email").fill(ANALYST)
        page.locator("#f-password").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_load_state()
        page.goto(base + "/staff/stats")
        assert page.get_by_role("heading", level=1).inner_text().startswith("Économie circulaire entre entreprises")
        lede = page.locator(".story .lede").inner_text()
        assert "de sous-produits sont passées" in lede and "grâce au service" in lede
        assert page.locator("svg.commune-map circle").count() >= 26
        assert page.locator("svg.funnel rect").count() >= 5
        assert page.get_by_text("Base Carbone V23.6", exact=False).first.is_visible()
        page.screenshot(path=str(SHOTS / "staff-dashboard.png"), full_page=True)
        page.screenshot(path=str(SHOTS / "staff-dashboard-top.png"))

        # Another period: the first half of last year.
        year = datetime.now(UTC).year - 1
        page.locator("#f-from").fill(f"{year}-01")
        page.locator("#f-to").fill(f"{year}-06")
        page.get_by_role("button", name="Afficher").click()
        page.wait_for_url(re.compile(rf".*from={year}-01.*"))
        assert f"janvier {year} – juin {year}" in page.locator(".report-head").inner_text()
        assert page.locator("table.figures").first.is_visible()

        with page.expect_download() as info:
            page.get_by_role("link", name="Télécharger (tableur)").click()
        download = info.value
        target = tmp_path / download.suggested_filename
        download.save_as(target)
        assert target.name == f"statistiques-ccma-{year}-01-{year}-06.xlsx"
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(target.read_bytes()))
        assert book.sheetnames[0] == "Synthèse" and "Méthode" in book.sheetnames
        assert book["Synthèse"]["B2"].value.startswith(f"{year}-01-01")

        # The report as it prints for a council meeting, and the page on a phone.
        page.goto(base + "/staff/stats")
        page.emulate_media(media="print")
        assert not page.locator("form.stats-filters").is_visible()
        page.screenshot(path=str(SHOTS / "staff-report-print.png"), full_page=True)
        page.emulate_media(media="screen")
        phone = browser.new_context(viewport={"width": 375, "height": 740}, locale="fr-FR", is_mobile=True,
                                    storage_state=context.storage_state())
        small = phone.new_page()
        small.goto(base + "/staff/stats")
        width = small.evaluate("document.documentElement.scrollWidth")
        small.screenshot(path=str(SHOTS / "staff-dashboard-375.png"), full_page=True)
        assert width <= 380, f"the page scrolls sideways on a phone ({width}px)"
        browser.close()
    assert not problems, problems
