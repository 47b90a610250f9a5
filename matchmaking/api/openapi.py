"""The OpenAPI 3.1 document, built from the routes the blueprint really serves.

Each view declares its contract with `@operation(...)` (body, query and response schemas are the
same marshmallow schemas the views parse and serialise with), and the document is assembled from
the app's URL map, so a route cannot exist without appearing in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app
from marshmallow import Schema
from werkzeug.http import HTTP_STATUS_CODES

from ..models import PUBLIC_ID_ALPHABET, PUBLIC_ID_LENGTH
from . import schemas

F = TypeVar("F", bound=Callable[..., Any])
PROBLEM_JSON = "application/problem+json"
TITLE = "Matchmaking API — CC du Mont des Avaloirs"
VERSION = "1.0.0"
DESCRIPTION = (
    "Offers (by-products) and needs (secondary materials) of the firms of the Communauté de communes "
    "du Mont des Avaloirs, the matches between them, and the exchanges they lead to.\n\n"
    "Authentication: `Authorization: Bearer <token>` (from `POST /api/v1/auth/register` or "
    "`POST /api/v1/auth/token`). Errors are `application/problem+json` (RFC 9457); validation errors "
    "carry `errors: {field: message}`. Messages follow `Accept-Language` (French by default).\n\n"
    "An anonymous listing of another firm shows no firm, no exact location (its commune; distances "
    "are computed from the commune centroid) and no price until both firms accept a match. A firm's "
    "contact details appear only after such an acceptance. CCMA facilitators and administrators see "
    "listings in full; analysts see what any firm sees.\n\n"
    "Listings and matches are known by opaque string ids. What another firm sees of the times of an "
    "anonymous listing (and of its matches) is the day, `YYYY-MM-DD`, not the instant; lists that mix "
    "firms are ordered by day, score or status, then by id, never by creation."
)
_ARG = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_CONVERTER_TYPES = {"int": "integer", "float": "number"}
# A listing's or a match's id: random, opaque, fixed length (models.new_public_id).
PUBLIC_ID = {"type": "string", "pattern": f"^[{PUBLIC_ID_ALPHABET}]{{{PUBLIC_ID_LENGTH}}}$",
             "description": "Opaque: random, it says nothing of when or next to what the item was made."}


def operation(
    summary: str,
    *,
    tags: Iterable[str],
    responses: Mapping[int, tuple[str, Any]],
    body: type[Schema] | None = None,
    query: type[Schema] | None = None,
    errors: Iterable[int] = (),
    public: bool = False,
    description: str | None = None,
    headers: Mapping[int, Mapping[str, Any]] | None = None,
) -> Callable[[F], F]:
    """Declare a view's contract: `responses` maps a status to (description, schema or None)."""

    def decorate(view: F) -> F:
        view.openapi = {  # type: ignore[attr-defined]
            "summary": summary,
            "description": description,
            "tags": list(tags),
            "responses": dict(responses),
            "body": body,
            "query": query,
            "errors": tuple(errors),
            "public": public,
            "headers": dict(headers or {}),
        }
        return view

    return decorate


def is_public(view: Callable[..., Any] | None) -> bool:
    return bool(getattr(view, "openapi", {}).get("public"))


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = [
        {
            "name": m["name"],
            "in": "path",
            "required": True,
            "schema": dict(PUBLIC_ID) if m["converter"] == "public_id"
            else {"type": _CONVERTER_TYPES.get(m["converter"] or "", "string")},
        }
        for m in _ARG.finditer(rule)
    ]
    return _ARG.sub(lambda m: "{" + m["name"] + "}", rule), params


def _content(schema: Any, media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": schema}}


def _operation(meta: Mapping[str, Any], path_params: list[dict[str, Any]]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (text, schema) in meta["responses"].items():
        response: dict[str, Any] = {"description": text}
        if schema is not None:
            response["content"] = _content(schema)
        if status in meta["headers"]:
            response["headers"] = meta["headers"][status]
        responses[str(status)] = response
    errors = set(meta["errors"]) | {500}
    if meta["body"] is not None:
        errors |= {400, 413, 415, 422}
    if meta["query"] is not None:
        errors.add(422)
    if path_params:
        errors.add(404)
    if not meta["public"]:
        errors.add(401)
    for status in sorted(errors):
        responses.setdefault(str(status), {
            "description": HTTP_STATUS_CODES.get(status, "Error"),
            "content": _content("Problem", PROBLEM_JSON),
        })
    op: dict[str, Any] = {"summary": meta["summary"], "tags": meta["tags"], "responses": responses}
    if meta["description"]:
        op["description"] = meta["description"]
    parameters: list[dict[str, Any]] = list(path_params)
    if meta["query"] is not None:
        parameters.append({"in": "query", "schema": meta["query"]})
    if parameters:
        op["parameters"] = parameters
    if meta["body"] is not None:
        op["requestBody"] = {"required": True, "content": _content(meta["body"])}
    if meta["public"]:
        op["security"] = []
    return op


def build(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={"description": DESCRIPTION},
        servers=[{"url": "/"}],
        security=[{"bearerAuth": []}],
    )
    spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer",
        "description": "A token from /auth/register or /auth/token. It stops working when revoked, when its account is "
                       f"disabled, or after {app.config['API_TOKEN_IDLE_DAYS']} days without use.",
    })
    spec.components.schema("Problem", schema=schemas.ProblemSchema)
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.endpoint.startswith("api."):
            continue
        meta = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if meta is None:
            continue
        path, params = _path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(meta, params)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def document() -> dict[str, Any]:
    """The document for the current app, built once per process."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cached: dict[str, Any] | None = app.extensions.get("matchmaking_openapi")
    if cached is None:
        cached = app.extensions["matchmaking_openapi"] = build(app)
    return cached
