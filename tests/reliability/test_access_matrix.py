"""The access-control matrix: every route × every role × whose object, sent for real.

The expected outcomes are one table, access_matrix.csv. Each line is exercised with the role's own
browser session (its form token read from a page) or bearer token, with a valid request body, so an
"ok" really reaches the handler and a refusal is a refusal of a request that would otherwise work.
A refused request must change nothing (every row of the territory is compared before and after), and
every answer, refused or not, carries the security headers. A request that changed something is
followed by a fresh territory, so each line starts from the same state.

The table must name exactly the routes of app.url_map: a new route fails the suite until someone
decides who may use it.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from matchmaking.extensions import limiter
from matchmaking.services import imports
from tests.factories import luhn_siret
from tests.reliability.privacy_world import (
    PASSWORD,
    ROLES,
    STAFF_ROLES,
    Territory,
    browser,
    build,
    csrf_token,
    fingerprint,
    wipe,
)

TABLE = Path(__file__).with_name("access_matrix.csv")
OUTCOMES = {"ok", "signin", "away", "403", "404", "409"}
MUTATING = {"POST", "PATCH", "DELETE"}


def read_table() -> list[dict[str, str]]:
    lines = [line for line in TABLE.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines))


ROWS = read_table()
ROUTES = sorted({(row["method"], row["route"]) for row in ROWS})


def app_routes(app: Any) -> set[tuple[str, str]]:
    return {(method, rule.rule) for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


# --- how each route is exercised -----------------------------------------------------------------

ID_PARAM = re.compile(r"<(?:([a-z_]+)(?:\([^)]*\))?:)?([a-z_]+)>")


def path_for(rule: str, case: str, world: Territory) -> str:
    """The rule with its parameters filled in for this case's object."""

    def value(match: re.Match[str]) -> str:
        converter, name = match.group(1), match.group(2)
        if name == "filename":
            return "staff.css" if rule.startswith("/staff/") else "app.css"
        if name == "fmt":
            return "csv"
        if name == "token":
            if case == "forged":
                return "forged-" + "x" * 30
            if rule.startswith("/account/confirm/"):
                return world.confirm_token
            return world.reset_token if rule.startswith("/password/") else world.unsubscribe_token
        kind = name.removesuffix("_id")
        if converter == "public_id":  # the firms' pages and the API: by public id; CCMA pages: by number
            return world.public_ids[f"{kind} {case}"]
        return str(world.ids[f"{kind} {case}"])

    return ID_PARAM.sub(value, rule)


QUERIES = {
    "/communes": "?postal_code=53700",
    "/listings/suggest": "?q=chambres+%C3%A0+air",
    "/search": "?q=caoutchouc&radius_km=100",
    "/api/v1/search": "?q=caoutchouc",
    "/api/v1/listings": "?kind=offer",
}

LISTING_FORM = {"kind": "offer", "title": "Palettes cassées", "quantity": "3", "unit": "t", "frequency": "monthly"}


def web_form(rule: str, world: Territory) -> dict[str, Any]:
    """A valid submission for each form, so that only access control can refuse it."""
    today = date.today().isoformat()
    forms: dict[str, dict[str, Any]] = {
        "/account": {"current_password": PASSWORD, "password": "another long secret", "password_confirm":
                     "another long secret"},
        "/firm/edit": {"name": "Nouveau nom", "naf_code": "22.19Z", "contact_name": "Zoé", "contact_email":
                       "zoe@example.fr", "contact_phone": "02 43 00 00 09"},
        "/firm/sites/<int:site_id>": {"name": "Hangar", "address": "1 rue Y", "postal_code": "53700",
                                      "commune": "Villaines-la-Juhel"},
        "/firm/sites/new": {"name": "Atelier", "address": "", "postal_code": "", "commune": "53271"},
        "/listings/<public_id:listing_id>/edit": LISTING_FORM,
        "/listings/<public_id:listing_id>/status": {"action": "pause"},
        "/listings/new": LISTING_FORM,
        "/matches/<public_id:match_id>/decision": {"decision": "accepted"},
        "/matches/<public_id:match_id>/exchanges": {"quantity": "1", "unit": "t", "date": today},
        "/notifications/read": {},
        "/password/forgot": {"email": world.emails["member_a"]},
        "/password/reset/<token>": {"password": "another long secret", "password_confirm": "another long secret"},
        "/register": {"firm_name": "Menuiserie Delta", "firm_siret": luhn_siret("7770000000001"),
                      "firm_commune": "53271", "user_name": "Denis", "user_email": "denis@delta.example.fr",
                      "user_password": "another long secret", "user_password_confirm": "another long secret"},
        "/sign-in": {"email": world.emails["member_a"], "password": PASSWORD},
        "/staff/firms/<int(max=2147483647):firm_id>/listings/new": LISTING_FORM | {"publish": "on"},
        "/staff/listings/<int(max=2147483647):listing_id>/edit": {"title": "Titre corrigé", "quantity": "4",
                                                                  "unit": "t", "frequency": "monthly"},
        "/staff/matches/<int(max=2147483647):match_id>/follow-up": {"follow_up": "contacted"},
        "/staff/matches/<int(max=2147483647):match_id>/introduce": {"message": "Je vous présente l'un à l'autre."},
        "/staff/matches/<int(max=2147483647):match_id>/notes": {"text": "Appel prévu jeudi."},
        "/staff/firms/<int(max=2147483647):firm_id>/verified": {"verified": "on"},
        "/staff/claims/<int(max=2147483647):claim_id>/decision": {"decision": "accept"},
    }
    return dict(forms.get(rule, {}))


def api_body(rule: str, world: Territory) -> dict[str, Any] | None:
    bodies: dict[str, dict[str, Any]] = {
        "/api/v1/auth/register": {"firm": {"name": "Menuiserie Delta", "siret": luhn_siret("7770000000002"),
                                           "commune_insee": "53271"},
                                  "user": {"email": "denis@delta.example.fr", "password": "another long secret"}},
        "/api/v1/auth/token": {"email": world.emails["member_a"], "password": PASSWORD},
        "/api/v1/classify": {"text": "chutes de chambres à air"},
        "/api/v1/listings": {"kind": "offer", "title": "Palettes cassées", "quantity": 3, "unit": "t",
                             "frequency": "monthly"},
        "/api/v1/listings/<public_id:listing_id>": {"title": "Titre corrigé"},
        "/api/v1/matches/<public_id:match_id>/exchanges": {"quantity": 1, "unit": "t",
                                                                      "date": date.today().isoformat()},
    }
    return bodies.get(rule)


def send(client: Any, role: str, method: str, rule: str, case: str, world: Territory) -> Any:
    path = path_for(rule, case, world) + QUERIES.get(rule, "")
    if rule.startswith("/api/"):
        headers = {} if role == "anonymous" else {"Authorization": f"Bearer {world.tokens[role]}"}
        body = api_body(rule, world) if method in MUTATING else None
        return client.open(path, method=method, headers=headers, json=body)
    if method == "GET":
        return client.get(path)
    data = web_form(rule, world)
    if rule == "/listings/import":
        data = {"mode": "all", "file": (io.BytesIO(imports.template_csv("fr")), "modele.csv")}
    data["csrf_token"] = csrf_token(client)
    return client.open(path, method=method, data=data)


def outcome(response: Any, role: str) -> str:
    status = response.status_code
    if status == 401:
        return "signin"
    if 300 <= status < 400:
        target = urlsplit(response.headers.get("Location", "")).path
        if target == "/sign-in":
            return "signin"
        if role in STAFF_ROLES and target == "/staff/":
            return "away"
        return "ok"
    if 200 <= status < 300:
        return "ok"
    return str(status)


SECURITY_HEADERS = {"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"}


def header_problems(response: Any, path: str) -> list[str]:
    """Every answer, page or API, error or not, carries the security headers; personal ones are not cached."""
    problems = [f"no {name}" for name in sorted(SECURITY_HEADERS) if name not in response.headers]
    if response.headers.get("X-Content-Type-Options", "nosniff") != "nosniff":
        problems.append("X-Content-Type-Options is not nosniff")
    cache = response.headers.get("Cache-Control", "")
    public = path.startswith(("/assets/", "/staff/static/", "/api/v1/openapi.json"))
    if (response.mimetype == "text/html" or path.startswith("/api/")) and not public and "no-store" not in cache:
        problems.append(f"Cache-Control {cache!r} on a personal answer")
    return problems


# --- the tests -----------------------------------------------------------------------------------


def test_the_table_names_every_route_of_the_application_and_no_other(app) -> None:
    served = app_routes(app)
    listed = set(ROUTES)
    assert not served - listed, f"routes missing from {TABLE.name}: {sorted(served - listed)}"
    assert not listed - served, f"lines of {TABLE.name} naming no route: {sorted(listed - served)}"


def test_the_table_is_complete_and_well_formed() -> None:
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in ROWS:
        assert {row[role] for role in ROLES} <= OUTCOMES, row
        seen[(row["method"], row["route"])].append(row["case"])
    for (method, route), cases in seen.items():
        named = bool(ID_PARAM.search(route)) and not route.endswith(("<path:filename>", "template.<fmt>"))
        expected = [["-"], ["A", "B"], ["valid", "forged"]]
        assert sorted(cases) in [sorted(e) for e in expected], (method, route, cases)
        assert (cases != ["-"]) == named, (method, route, "an object route needs the cases A and B")


@pytest.fixture(scope="module")
def territory(app):
    state = {"world": build(app)}
    yield state
    with app.test_request_context():
        from matchmaking.extensions import db

        wipe(db.session)


@pytest.mark.parametrize(("method", "route"), ROUTES, ids=[f"{m} {r}" for m, r in ROUTES])
def test_route_answers_each_role_as_the_table_says(app, territory, method: str, route: str) -> None:
    failures: list[str] = []
    for row in (r for r in ROWS if (r["method"], r["route"]) == (method, route)):
        for role in ROLES:
            world = territory["world"]
            client = browser(app, world, role)
            with app.app_context():
                limiter.reset()  # the limits have their own tests; here each request counts alone
            before = fingerprint(app) if method in MUTATING else None
            response = send(client, role, method, route, row["case"], world)
            got = outcome(response, role)
            label = f"{method} {route} [{row['case']}] as {role}"
            if got != row[role]:
                failures.append(f"{label}: expected {row[role]}, got {got} ({response.status_code} "
                                f"{response.headers.get('Location', '')} {response.get_data(as_text=True)[:160]!r})")
            failures += [f"{label}: {p}" for p in header_problems(response, route)]
            response.close()  # files (assets, exports) are streamed
            if method in MUTATING:
                if got in ("signin", "away", "403", "404", "409"):
                    if fingerprint(app) != before:
                        failures.append(f"{label}: refused ({got}) but the data changed")
                else:
                    territory["world"] = build(app)  # it did something: start the next line afresh
    assert not failures, "\n".join(failures)
