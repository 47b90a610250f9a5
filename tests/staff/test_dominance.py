"""The dominance rule: tonnes of which one firm makes more than 85 %, or two firms more than 90 %,
are "secret statistique" on the page, in the API and in the exports, and no subtraction of shown
figures gives them back; balanced figures stay visible.

The territory: wood flows between three pairs of firms, cardboard and plastics between three other
pairs each, every month for five months. With `dominant`, one sawmill makes nearly all the wood."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from openpyxl import load_workbook

from matchmaking.models import Listing
from matchmaking.services import stats, tokens
from tests.factories import make_firm, make_listing, make_user
from tests.staff.conftest import PASSWORD, sign_in
from tests.staff.test_disclosure import _exchange, _views, read_truth, run_attack

TODAY = datetime.now(UTC).date()
FLOWS = {  # family: (List of Waste code, monthly tonnes of each of its three flows)
    "wood": ("03 01 05", (41.3, 1.9, 2.2)),
    "paper_cardboard": ("15 01 01", (5.0, 4.6, 5.3)),
    "plastics": ("15 01 02", (3.9, 4.4, 4.1)),
}
BALANCED_WOOD = (4.2, 3.8, 4.5)


def _territory(session: Any, *, dominant: bool) -> None:
    month0 = date(TODAY.year, TODAY.month, 1)
    found = date.fromordinal(month0.toordinal() - 200)
    communes = ["53271", "53185", "53121"]
    for family, (code, tonnes) in FLOWS.items():
        if family == "wood" and not dominant:
            tonnes = BALANCED_WOOD
        for i, monthly in enumerate(tonnes):
            giver = make_firm(session, naf_code="16.10A", commune_insee=communes[i])
            taker = make_firm(session, naf_code="01.47Z", commune_insee=communes[i])
            offer = make_listing(session, giver, title=f"{family} {i}", low_code=code, quantity=monthly, unit="t",
                                 frequency="monthly")
            need = make_listing(session, taker, kind="need", title=f"{family} {i}", low_code=code,
                                quantity=monthly, unit="t", frequency="monthly", radius_km=40)
            assert offer.material_family == family
            for back in range(1, 6):
                _exchange(session, offer, need, date.fromordinal(month0.toordinal() - 30 * back), monthly, found)
    session.commit()
    stats._cache.clear()


def _rows(session: Any) -> dict[str, stats.Breakdown]:
    d = stats.dashboard(session, stats.default_period(TODAY), stats.Filters(), TODAY)
    return {r.key: r for r in d.families}


def test_the_rule_weighs_the_largest_firm_and_the_largest_pair() -> None:
    rule = stats.Dominance(0.85, 0.90)
    assert stats.confidentiality(2) == "primary"
    assert stats.confidentiality(3) is None  # counts: the rule of 3 firms only
    # One firm makes 86 % of 100 t.
    assert stats.confidentiality(3, 100.0, {1: 86.0, 2: 7.0, 3: 7.0}, {}, rule) == "dominance"
    # 85 % is not more than 85 %, and with the next 4 % the pair makes 89 %.
    assert stats.confidentiality(5, 100.0, {1: 85.0, 2: 4.0, 3: 4.0, 4: 4.0, 5: 3.0}, {}, rule) is None
    # Two firms make 91 %, neither more than 85 %.
    assert stats.confidentiality(4, 100.0, {1: 60.0, 2: 31.0, 3: 5.0, 4: 4.0}, {}, rule) == "dominance"
    assert stats.confidentiality(4, 100.0, {1: 50.0, 2: 40.0, 3: 6.0, 4: 4.0}, {}, rule) is None  # 90 %
    # Exchanges: both firms take part in each. Three flows 1→2 (50 t), 3→4 (45 t), 5→6 (5 t): firms 1
    # and 3 together took part in 95 t; 1 and 2 in 50 t only (the flow they share counts once).
    parts = {1: 50.0, 2: 50.0, 3: 45.0, 4: 45.0, 5: 5.0, 6: 5.0}
    shared = {(1, 2): 50.0, (3, 4): 45.0, (5, 6): 5.0}
    assert stats.confidentiality(6, 100.0, parts, shared, rule) == "dominance"
    balanced = {1: 34.0, 2: 34.0, 3: 33.0, 4: 33.0, 5: 33.0, 6: 33.0}
    assert stats.confidentiality(6, 100.0, balanced, {(1, 2): 34.0, (3, 4): 33.0, (5, 6): 33.0}, rule) is None
    # A buyer taking everything from three suppliers makes all of the figure.
    hub = {1: 100.0, 2: 30.0, 3: 30.0, 4: 40.0}
    assert stats.confidentiality(4, 100.0, hub, {(1, 2): 30.0, (1, 3): 30.0, (1, 4): 40.0}, rule) == "dominance"


def test_balanced_figures_stay_visible(session: Any) -> None:
    _territory(session, dominant=False)
    rows = _rows(session)
    for family in FLOWS:
        assert rows[family]["exchanged"].status == "shown", family
    assert rows["wood"]["exchanged"].value == pytest.approx(5 * sum(BALANCED_WOOD))
    assert rows["wood"]["co2"].status == "shown"


def test_a_figure_one_firm_makes_is_withheld_and_no_subtraction_gives_it_back(session: Any) -> None:
    _territory(session, dominant=True)
    rows = _rows(session)
    wood = rows["wood"]
    # 3 flows, 6 firms: enough firms, but the sawmill and its buyer make 91 % of the wood.
    assert wood["exchanged"] == stats.Figure(None, "dominance")
    assert wood["exchanged"].reason == "dominated_by_one_or_two_firms"
    assert wood["co2"].value is None and wood["cost"].value is None  # what follows the tonnes too
    assert wood["offered"].status == "dominance" and wood["matched"].status == "dominance"
    # The total and a balanced family are still shown; the other balanced family is what the total
    # minus the shown one would give the wood away with, so it is withheld in its place.
    d = stats.dashboard(session, stats.default_period(TODAY), stats.Filters(), TODAY)
    assert d.kpis["exchanged"].value == pytest.approx(5 * sum(sum(t) for _, t in FLOWS.values()))
    assert rows["paper_cardboard"]["exchanged"].value == pytest.approx(5 * sum(FLOWS["paper_cardboard"][1]))
    assert rows["plastics"]["exchanged"] == stats.Figure(None, "secondary")
    # The attack: every figure of every view, every combination of subtractions.
    board, report = run_attack(_views(read_truth(), pairs_periods=8, triples=50))
    assert report["exchanged"][1] > 0 and board.figures > 1000


def test_the_attack_finds_the_dominated_figure_without_complementary_suppression(session: Any,
                                                                                monkeypatch: Any) -> None:
    """The check has teeth: withholding the dominated figure alone lets the total minus the other
    families give it back."""
    _territory(session, dominant=True)
    monkeypatch.setattr(stats, "release", lambda n, candidates, primaries, chunk=0: set(candidates))
    with pytest.raises(AssertionError, match="can be worked out"):
        run_attack(_views(read_truth(), pairs_periods=1, triples=0))
    stats._cache.clear()


def test_the_page_the_api_and_the_exports_withhold_the_dominated_figure(app: Any, client: Any,
                                                                         session: Any) -> None:
    _territory(session, dominant=True)
    analyst = make_user(session, role="analyst", password=PASSWORD, name="Analyst")
    token = tokens.issue(session, analyst)
    session.commit()
    wood_tonnes = 5 * sum(FLOWS["wood"][1])

    body = client.get("/api/v1/stats/by-family", headers={"Authorization": f"Bearer {token}"}).get_json()
    api_rows = {r["family"]: r for r in body["rows"]}
    assert api_rows["wood"]["tonnes_exchanged"] == {"value": None, "reason": "dominated_by_one_or_two_firms"}
    assert api_rows["wood"]["co2e_avoided_t"]["value"] is None
    summary = client.get("/api/v1/stats/summary", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert "dominance rule" in summary["co2e_avoided"]["method"]["disclosure_rule"]

    sign_in(client, analyst.email)
    html = client.get("/staff/stats?lang=fr").get_data(as_text=True)
    row = re.search(r'<tr><th scope="row">Bois</th>(.*?)</tr>', html, re.S)
    assert row, "no wood row on the page"
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    exchanged = cells[2]
    assert 'class="secret"' in exchanged and "Secret statistique" in exchanged
    assert "règle de dominance" in html

    text = client.get("/staff/stats/export.csv").get_data(as_text=True).lstrip("\ufeff")
    wood = [r for r in csv.DictReader(io.StringIO(text)) if r["table"] == "family" and r["key"] == "wood"]
    exchanged_row = next(r for r in wood if r["measure"] == "exchanged")
    assert exchanged_row["value"] == "" and exchanged_row["status"] == "dominance"
    assert exchanged_row["reason"] == "dominated_by_one_or_two_firms"
    assert all(r["value"] == "" for r in wood if r["measure"] in ("exchanged", "co2", "landfill", "cost"))
    assert f",{wood_tonnes:.1f}," not in text

    book = load_workbook(io.BytesIO(client.get("/staff/stats/export.xlsx").data))
    families = book[book.sheetnames[2]]
    header = [c.value for c in next(families.iter_rows(min_row=1, max_row=1))]
    column = next(i for i, title in enumerate(header) if title and str(title).startswith("Tonnes échangées ("))
    wood_row = next(r for r in families.iter_rows(min_row=2) if r[0].value == "Bois")
    assert wood_row[column].value == "s"
    assert session.query(Listing).count() == 18
