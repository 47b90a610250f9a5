"""The JSON API at /api/v1 (contract: API.md; document: GET /api/v1/openapi.json).

Views only translate: parse (parsing.py) → one service call → commit → answer (render.py).
Errors become problem+json in problems.py; every route needs a bearer token unless its
`@operation(..., public=True)`.

Statistics (GET /api/v1/stats/summary) live in stats.py, which registers its views on this
blueprint with `@bp.get(...)`, `@operation(...)` and `@require_roles(...)` like the others.
"""

from __future__ import annotations

import importlib
import importlib.util

from flask import Blueprint, Response

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.after_request
def _headers(response: Response) -> Response:
    # Answers depend on who asks and in which language; keep them out of shared caches.
    response.headers.setdefault("Cache-Control", "no-store")
    response.vary.add("Authorization")
    response.vary.add("Accept-Language")
    return response


from . import problems, security  # noqa: E402

problems.register(bp)
bp.before_request(security.authenticate)

from . import accounts, listings, matches, meta, search  # noqa: E402,F401

if importlib.util.find_spec(f"{__name__}.stats") is not None:  # statistics, once written
    importlib.import_module(f"{__name__}.stats")
