"""The statistics API: staff only, the page's figures, withheld cells as null with a reason, every
answer checked against the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from matchmaking.extensions import db
from matchmaking.services import stats, tokens, users
from tests.api.conftest import CheckedClient
from tests.factories import make_firm, make_user

ENDPOINTS = ["/api/v1/stats/summary", "/api/v1/stats/by-family", "/api/v1/stats/by-category",
             "/api/v1/stats/by-commune", "/api/v1/stats/by-section", "/api/v1/stats/monthly"]


def test_statistics_are_for_staff_only(app: Any, client: Any, session: Any) -> None:
    api = CheckedClient(app, client)
    member = make_user(session, make_firm(session))
    analyst = make_user(session, role="analyst")
    member_token, analyst_token = tokens.issue(session, member), tokens.issue(session, analyst)
    session.commit()
    for url in ENDPOINTS:
        assert api.get(url).status_code == 401
        assert api.get(url, headers={"Authorization": f"Bearer {member_token}"}).status_code == 403
        assert api.get(url, headers={"Authorization": f"Bearer {analyst_token}"}).status_code == 200


def test_bad_parameters_are_a_problem_not_a_crash(app: Any, client: Any, session: Any) -> None:
    api = CheckedClient(app, client)
    analyst = make_user(session, role="facilitator")
    headers = {"Authorization": f"Bearer {tokens.issue(session, analyst)}"}
    session.commit()
    cases = (("from=2026-02-30", "from"), ("from=2026-06&to=2026-01", "to"), ("family=unobtainium", "family"),
             ("commune=75056", "commune"), ("section=9", "section"), ("from=1850-01", "from"))
    for query, field in cases:
        response = api.get(f"/api/v1/stats/summary?{query}", headers=headers)
        assert response.status_code == 422, query
        assert field in response.get_json()["errors"], query


@pytest.fixture()
def demo_api(demo_app: Any) -> tuple[CheckedClient, dict[str, str]]:
    with demo_app.app_context():
        user = users.find_by_email(db.session, "statisticien@ccma.example.fr") or users.create_user(
            db.session, email="statisticien@ccma.example.fr", password="correct horse battery", role="analyst")
        token = tokens.issue(db.session, user)
        db.session.commit()
    return CheckedClient(demo_app, demo_app.test_client()), {"Authorization": f"Bearer {token}"}


def test_the_summary_gives_the_page_figures_and_withholds_the_same_cells(demo_app: Any, demo_api: Any) -> None:
    api, headers = demo_api
    body = api.get("/api/v1/stats/summary", headers=headers).get_json()
    today = datetime.now(UTC).date()
    with demo_app.test_request_context():
        d = stats.dashboard(db.session, stats.default_period(today), stats.Filters(), today)
    assert body["period"] == {"from": d.period.start.isoformat(), "to": d.period.end.isoformat()}
    assert body["tonnes_exchanged"]["value"] == pytest.approx(d.kpis["exchanged"].value)
    assert [s["count"]["value"] for s in body["funnel"]] == [s.figure.value for s in d.funnel]
    assert body["co2e_avoided"]["method"]["transport_kgco2e_per_tkm"] == 0.401
    assert any("Base Carbone" in src for f in body["co2e_avoided"]["method"]["factors"] for src in f["sources"])
    rows = {r["family"]: r for r in body["tonnes_by_family"]}
    for row in d.families:
        api_figure = rows[row.key]["tonnes_exchanged"]
        if row["exchanged"].value is None:
            assert api_figure == {"value": None, "reason": {"primary": "fewer_than_3_firms",
                                                            "dominance": "dominated_by_one_or_two_firms",
                                                            "secondary": "protects_another_figure"}[
                row["exchanged"].status]}
        else:
            assert api_figure["value"] == pytest.approx(row["exchanged"].value)
    assert any(r["tonnes_exchanged"]["value"] is None for r in body["tonnes_by_family"])


def test_companions_follow_the_period_and_filters(demo_api: Any) -> None:
    api, headers = demo_api
    monthly = api.get("/api/v1/stats/monthly?from=2026-01&to=2026-03", headers=headers).get_json()
    assert [r["month"] for r in monthly["rows"]] == ["2026-01", "2026-02", "2026-03"]
    communes = api.get("/api/v1/stats/by-commune?family=wood", headers=headers).get_json()
    assert communes["filters"]["family"] == "wood"
    assert len([r for r in communes["rows"] if r["commune"] != "outside"]) == 26
    assert all(r["firms"] == {"value": None, "reason": "not_applicable"} for r in communes["rows"])
    sections = api.get("/api/v1/stats/by-section", headers=headers).get_json()
    assert {r["section"] for r in sections["rows"]} >= {"A", "C"}
    assert api.get("/api/v1/stats/by-category", headers=headers).status_code == 200
