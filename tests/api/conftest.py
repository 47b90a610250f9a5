"""API test helpers: firms with a user and a token, and a client that checks every /api/v1 answer
against the OpenAPI document (status documented, body valid against its schema, problem+json for
errors), so the document is tested by every test here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import flask_babel
import pytest
from openapi_schema_validator import OAS31Validator

from matchmaking.extensions import limiter
from matchmaking.models import Match
from matchmaking.services import matching, tokens
from tests.factories import make_firm, make_listing, make_user


@dataclass
class Actor:
    firm: Any
    user: Any
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture()
def make_actor(session):
    def build(role: str = "member", **firm_overrides: Any) -> Actor:
        firm = make_firm(session, **firm_overrides) if role == "member" else None
        user = make_user(session, firm, role=role)
        token = tokens.issue(session, user)
        session.commit()
        return Actor(firm, user, token)

    return build


@pytest.fixture(autouse=True)
def fresh_index_and_limits(app):
    # The engine index lives per process and rate limits count per client address:
    # each test starts from its own rows and a clean count.
    matching.reset_index()
    with app.app_context():
        limiter.reset()
    yield
    matching.reset_index()


class CheckedClient:
    """The Flask test client, plus a contract check of each answer against openapi.json."""

    def __init__(self, app: Any, client: Any) -> None:
        self.app, self.client = app, client
        self.spec = client.get("/api/v1/openapi.json").get_json()

    def _operation(self, path: str, method: str) -> dict[str, Any] | None:
        adapter = self.app.url_map.bind("localhost")
        try:
            endpoint, _args = adapter.match(path, method=method)
        except Exception:
            return None
        rule = next(r for r in self.app.url_map.iter_rules(endpoint))
        import re

        template = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
        return self.spec["paths"].get(template, {}).get(method.lower())

    def check(self, method: str, path: str, response: Any) -> None:
        path = path.split("?")[0]
        if not path.startswith("/api/v1/"):
            return
        if response.status_code >= 400:
            assert response.mimetype == "application/problem+json", response.data
            problem = response.get_json()
            assert {"type", "title", "status"} <= set(problem) and problem["status"] == response.status_code
        operation = self._operation(path, method)
        if operation is None:
            assert response.status_code in (404, 405), f"{method} {path} is served but not documented"
            return
        documented = operation["responses"].get(str(response.status_code))
        assert documented is not None, f"{method} {path} answered {response.status_code}, not documented"
        content = documented.get("content")
        if content is None:
            assert not response.data, f"{method} {path}: undocumented body"
            return
        media, = content
        assert response.mimetype == media
        schema = dict(content[media]["schema"]) | {"components": self.spec["components"]}
        OAS31Validator(schema).validate(json.loads(response.data))

    def open(self, method: str, path: str, **kwargs: Any) -> Any:
        # Requests here share the test's app context; forget the locale the last one chose.
        flask_babel.refresh()
        response = self.client.open(path, method=method, **kwargs)
        self.check(method, path, response)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.open("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.open("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.open("DELETE", path, **kwargs)


@pytest.fixture()
def api(app, client) -> CheckedClient:
    return CheckedClient(app, client)


def add_match(session, offer, need, **values: Any) -> Match:
    match = Match(offer=offer, need=need, score=values.pop("score", 0.8), distance_km=values.pop("distance_km", 4.0),
                  explanation=values.pop("explanation", {"distance_km": 4.0, "words": ["caoutchouc"]}), **values)
    session.add(match)
    session.commit()
    return match


def published(session, firm, **overrides: Any) -> Any:
    listing = make_listing(session, firm, **overrides)
    session.commit()
    return listing
