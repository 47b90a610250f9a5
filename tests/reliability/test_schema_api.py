"""The API against its own OpenAPI document, driven by schemathesis: generated requests (valid and
invalid) for every operation, sent in process with a member's bearer token so they reach the real
handlers. No answer may be a 5xx, and every answer must match the document (status documented,
content type, body schema, headers); invalid input must be refused with a 4xx.

Bounded for CI: SCHEMA_EXAMPLES requests per operation (default 40), no shrinking beyond a few
seconds. SQLite pass only: the handlers are the same on PostgreSQL and the rest of the suite covers
the database differences.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from matchmaking.app import create_app
from matchmaking.extensions import limiter
from matchmaking.models import Match
from matchmaking.services import matching, tokens
from tests.factories import make_firm, make_listing, make_user

pytestmark = [pytest.mark.sqlite_only]

EXAMPLES = int(os.environ.get("SCHEMA_EXAMPLES", "40"))
REPORT = Path(__file__).resolve().parents[2] / "test-output" / "schemathesis.txt"
TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    """Requests sent, by generation mode and status class, saved for docs/RELIABILITY.md."""
    started = time.perf_counter()
    yield
    if TALLY:
        REPORT.parent.mkdir(exist_ok=True)
        line = " ".join(f"{key}={TALLY[key]}" for key in sorted(TALLY))
        with REPORT.open("a") as out:
            out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} examples_per_operation={EXAMPLES} {line} "
                      f"seconds={time.perf_counter() - started:.0f}\n")


@dataclass
class World:
    """A member with a token, listings of theirs and of another firm, and a match between them."""

    user: Any
    listing_ids: list[str]  # public ids
    match_ids: list[str]
    tally: dict[str, int] = field(default_factory=dict)


@pytest.fixture()
def world(session) -> World:
    mine = make_firm(session)
    other = make_firm(session, commune_insee="53147")
    user = make_user(session, mine)
    need = make_listing(session, mine, kind="need", title="Caoutchouc à broyer", radius_km=50)
    offer = make_listing(session, mine, title="Sciure de chêne sèche", low_code="03 01 05")
    theirs = make_listing(session, other, title="Chutes de chambres à air", low_code="16 01 03")
    hidden = make_listing(session, other, title="Palettes cassées", anonymous=True, price_eur_per_unit=3)
    session.flush()
    match = Match(offer=theirs, need=need, score=0.8, distance_km=12.0, explanation={"words": ["caoutchouc"]})
    session.add(match)
    session.commit()
    matching.reset_index()
    return World(user, [need.public_id, offer.public_id, theirs.public_id, hidden.public_id], [match.public_id])


def _document() -> dict[str, Any]:
    """The document the app serves at /api/v1/openapi.json (built from its routes, no database needed).
    Loaded at collection so that each operation is a test of its own."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "schema"})
    with app.test_client() as client:
        document: dict[str, Any] = client.get("/api/v1/openapi.json").get_json()
    return document


schema = schemathesis.openapi.from_dict(_document())
# Every request carries a member's token (set below), so no Authorization header is generated; the
# ignored_auth check still sends each operation without a token and with a wrong one. Unknown query
# parameters are ignored by design (as caches and trackers add them), so none is generated.
schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)

# A real id half of the time, so that operations on one listing or match reach past the 404.
_ID_PARAMS = {"listing_id": "listing_ids", "match_id": "match_ids"}


def _aim(case: Any, world: World) -> None:
    for name, attribute in _ID_PARAMS.items():
        value = (case.path_parameters or {}).get(name)
        if isinstance(value, str) and value and ord(value[0]) % 2 == 0:
            ids = getattr(world, attribute)
            case.path_parameters[name] = ids[ord(value[-1]) % len(ids)]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented_and_never_with_a_server_error(case, world, session, app) -> None:
    case.operation.app = case.operation.schema.app = app  # the session's app, on the test database
    _aim(case, world)
    # A fresh token each time: one generated request may be DELETE /auth/token, which revokes it.
    token = tokens.issue(session, world.user)
    session.commit()
    with app.app_context():
        limiter.reset()
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    response = case.call(headers=headers)
    elapsed = time.perf_counter() - started
    mode = case.meta.generation.mode.value if case.meta else "explicit"
    TALLY["requests"] += 1
    TALLY[f"{mode}"] += 1
    TALLY[f"status_{response.status_code // 100}xx"] += 1
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    assert elapsed < 5, f"{case.method} {case.formatted_path} took {elapsed:.1f} s"
    # Requests valid for the schema may still be refused for their meaning (a SIRET's Luhn key, a
    # commune that does not exist, a date range backwards): positive_data_acceptance is left out.
    case.validate_response(response, headers=headers, excluded_checks=[positive_data_acceptance])
