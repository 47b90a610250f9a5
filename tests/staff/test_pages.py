"""The workspace's pages through the web: who may open what, the statistics page and its exports,
the facilitation pages and their forms."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, select

from matchmaking.extensions import db
from matchmaking.models import AuditLog, FollowUp, Listing, Match, Notification, UserSession, utcnow
from matchmaking.services import users
from tests.factories import make_firm, make_listing, make_user
from tests.staff.conftest import PASSWORD, post, sign_in


def _reset_limits(app: Any) -> None:
    from matchmaking import extensions

    limiter = getattr(extensions, "limiter", None) or app.extensions.get("rate_limiter")
    with app.app_context():
        limiter.reset()


@pytest.fixture(autouse=True)
def _limits(app: Any) -> Iterator[None]:
    _reset_limits(app)
    yield
    with app.app_context():
        db.session.execute(delete(UserSession))
        db.session.commit()


def staff(session: Any, role: str) -> Any:
    return make_user(session, role=role, password=PASSWORD, name=role.title())


def test_the_workspace_answers_404_to_members_and_sends_visitors_to_sign_in(client: Any, session: Any) -> None:
    firm = make_firm(session)
    member = make_user(session, firm, password=PASSWORD)
    analyst = staff(session, "analyst")
    session.commit()
    assert client.get("/staff/stats").status_code == 302
    sign_in(client, member.email)
    for url in ("/staff/stats", "/staff/queue", "/staff/stats/export.csv", "/staff/firms"):
        assert client.get(url).status_code == 404, url
    other = client.application.test_client()
    sign_in(other, analyst.email)
    assert other.get("/staff/stats").status_code == 200
    assert other.get("/staff/queue").status_code == 404  # analysts see aggregates only
    assert other.get("/staff/").headers["Location"].endswith("/staff/stats")


def test_the_statistics_page_shows_the_method_and_its_sources(client: Any, session: Any) -> None:
    analyst = staff(session, "analyst")
    session.commit()
    sign_in(client, analyst.email)
    html = client.get("/staff/stats?lang=fr").get_data(as_text=True)
    assert "Économie circulaire entre entreprises" in html
    assert "Base Carbone V23.6" in html and "43722" in html and "DESNZ" in html
    assert "TGAP" in html and "grâce au service" in html
    assert "<svg" in html and "commune-map" in html
    assert "moins de 3 entreprises" in html


def test_a_bad_period_falls_back_to_the_default_with_a_message(client: Any, session: Any) -> None:
    analyst = staff(session, "analyst")
    session.commit()
    sign_in(client, analyst.email)
    page = client.get("/staff/stats?from=2026-13&to=zzz&section=Q9&lang=en")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "error-summary" in html


@pytest.fixture()
def demo_client(demo_app: Any) -> Iterator[Any]:
    _reset_limits(demo_app)
    with demo_app.app_context():
        if users.find_by_email(db.session, "analyste@ccma.example.fr") is None:
            users.create_user(db.session, email="analyste@ccma.example.fr", password=PASSWORD, role="analyst")
            db.session.commit()
    client = demo_app.test_client()
    sign_in(client, "analyste@ccma.example.fr")
    yield client


def test_the_demo_dashboard_and_its_exports_withhold_the_same_figures(demo_client: Any) -> None:
    html = demo_client.get("/staff/stats?lang=fr").get_data(as_text=True)
    assert 'class="secret"' in html  # some figures of the demo are withheld
    csv_text = demo_client.get("/staff/stats/export.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert {"summary", "funnel", "family", "commune", "naf_section", "month", "ewc_stat"} <= {r["table"] for r in rows}
    withheld = [r for r in rows if r["status"] in ("primary", "dominance", "secondary")]
    assert withheld and all(r["value"] == "" and r["reason"] for r in withheld)
    shown = {(r["table"], r["key"], r["measure"]): r for r in rows if r["status"] == "shown"}
    assert float(shown[("summary", "exchanged", "exchanged")]["value"]) > 0

    response = demo_client.get("/staff/stats/export.xlsx?from=2025-01&to=2026-12")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.data))
    assert len(book.sheetnames) == 8
    families = book[book.sheetnames[2]]
    values = [cell.value for row in families.iter_rows(min_row=2) for cell in row[1:]]
    assert any(isinstance(v, float | int) and v > 0 for v in values)
    assert any(v in ("s", "s*") for v in values)  # withheld, not blank and not a number
    method = book[book.sheetnames[-1]]
    assert any("Base Carbone" in str(c.value) for row in method.iter_rows() for c in row if c.value)


def test_a_facilitator_opens_introduces_and_follows_a_pair(client: Any, session: Any) -> None:
    facilitator = staff(session, "facilitator")
    offer_firm, need_firm = make_firm(session, name="Cycles du Mont"), make_firm(session, name="Palettes du Pail")
    make_user(session, offer_firm)
    make_user(session, need_firm)
    offer = make_listing(session, offer_firm, title="Chambres à air usagées")
    need = make_listing(session, need_firm, kind="need", title="Caoutchouc pour patins", radius_km=30)
    match = Match(offer=offer, need=need, score=0.86, distance_km=4.2, explanation={},
                  created_at=utcnow() - timedelta(days=9))
    session.add(match)
    session.commit()
    sign_in(client, facilitator.email)

    queue = client.get("/staff/queue?lang=fr").get_data(as_text=True)
    assert "Chambres à air usagées" in queue and f"/staff/matches/{match.id}" in queue
    page = client.get(f"/staff/matches/{match.id}")
    assert page.status_code == 200 and "Palettes du Pail" in page.get_data(as_text=True)
    assert session.scalar(select(AuditLog).where(AuditLog.action == "match.viewed",
                                                 AuditLog.target_id == match.id)) is not None

    url = f"/staff/matches/{match.id}"
    assert post(client, url + "/introduce", {"message": ""}, form_url=url).status_code == 422
    response = post(client, url + "/introduce", {"message": "Les patins peuvent se faire avec ces chambres."},
                    form_url=url)
    assert response.status_code == 302
    assert session.scalars(select(Notification).where(Notification.match_id == match.id)).all()
    assert post(client, url + "/follow-up", {"follow_up": "dropped", "reason": ""}, form_url=url).status_code == 422
    assert post(client, url + "/follow-up", {"follow_up": "trial"}, form_url=url).status_code == 302
    assert post(client, url + "/notes", {"text": "Essai de 20 kg en mars"}, form_url=url).status_code == 302
    session.expire_all()
    assert session.get(Match, match.id).follow_up is FollowUp.trial
    assert client.get("/staff/follow-up?status=trial").get_data(as_text=True).count("Chambres à air usagées") == 1


def test_a_facilitator_writes_and_edits_a_listing_for_a_firm(client: Any, session: Any) -> None:
    facilitator = staff(session, "facilitator")
    firm = make_firm(session, name="Ébénisterie Lemonnier")
    session.commit()
    sign_in(client, facilitator.email)
    assert "Ébénisterie Lemonnier" in client.get("/staff/firms?q=lemon").get_data(as_text=True)
    url = f"/staff/firms/{firm.id}/listings/new"
    response = post(client, url, {"kind": "offer", "title": "Copeaux de chêne", "quantity": "2", "unit": "m3",
                                  "frequency": "monthly", "low_code": "03 01 05", "publish": "on"})
    assert response.status_code == 302
    listing = session.scalar(select(Listing).where(Listing.firm_id == firm.id))
    assert listing is not None and listing.title == "Copeaux de chêne"
    edit = f"/staff/listings/{listing.id}/edit"
    assert post(client, edit, {"title": "Copeaux de chêne et noyer", "quantity": "3", "unit": "m3",
                               "frequency": "monthly"}).status_code == 302
    session.expire_all()
    assert session.get(Listing, listing.id).quantity == 3
    actions = {a for (a,) in session.execute(select(AuditLog.action).where(AuditLog.target_id == listing.id))}
    assert {"listing.created_on_behalf", "listing.updated_on_behalf"} <= actions
    assert post(client, url, {"kind": "offer", "title": "", "quantity": "x"}).status_code == 422


def test_reminders_page_lists_listings_nobody_confirmed(client: Any, session: Any) -> None:
    facilitator = staff(session, "facilitator")
    firm = make_firm(session)
    listing = make_listing(session, firm, title="Bâches usagées")
    listing.confirmed_at = utcnow() - timedelta(days=120)
    session.commit()
    sign_in(client, facilitator.email)
    assert "Bâches usagées" in client.get("/staff/reminders").get_data(as_text=True)

