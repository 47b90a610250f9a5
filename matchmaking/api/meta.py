"""The OpenAPI document of this API."""

from __future__ import annotations

from flask import Response, jsonify

from . import bp
from .openapi import document, operation


@bp.get("/openapi.json")
@operation("This document (OpenAPI 3.1)", tags=["meta"], public=True,
           responses={200: ("The OpenAPI document.", {"type": "object"})})
def openapi_document() -> Response:
    response = jsonify(document())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
