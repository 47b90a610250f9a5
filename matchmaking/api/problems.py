"""Every API error as application/problem+json (RFC 9457), from one set of handlers.

Domain exceptions from the services become 404/409/422 here and nowhere else; HTTP errors
(bad JSON, missing token, unknown route, wrong method, body too large) get the same shape, and an
unexpected failure is logged and answered with a bare 500, never a stack trace.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, default_exceptions
from werkzeug.exceptions import NotFound as NoRoute

from ..extensions import db
from ..services.errors import Conflict, NotFound, ValidationError
from ..services.sign_in import Delayed
from ..services.validation import FieldError
from ..services.verification import Unconfirmed

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "tag:matchmaking,2026:"

TITLES = {
    400: _l("Bad request"),
    401: _l("Authentication required"),
    403: _l("Forbidden"),
    404: _l("Not found"),
    405: _l("Method not allowed"),
    409: _l("Conflict"),
    413: _l("Request too large"),
    415: _l("Unsupported media type"),
    422: _l("Invalid data"),
    429: _l("Too many requests"),
    500: _l("Internal error"),
}
DETAILS = {
    401: _l("Send a valid token in the header Authorization: Bearer <token>."),
    404: _l("No such resource, or it is not yours to see."),
    405: _l("This method is not allowed on this resource."),
    413: _l("The request body is too large."),
    415: _l("Send JSON with the header Content-Type: application/json."),
    500: _l("Something went wrong on our side; the error has been logged."),
}


def problem(status: int, *, detail: Any = None, title: Any = None, type_: str | None = None,
            errors: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Response:
    """A problem+json response; lazy strings are rendered in the request's language here."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + type_ if type_ else "about:blank",
        "title": str(title or TITLES.get(status) or "Error"),
        "status": status,
    }
    if detail is None:
        detail = DETAILS.get(status)
    if detail is not None:
        body["detail"] = str(detail)
    if errors is not None:
        body["errors"] = errors
    response = current_app.response_class(current_app.json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = _content_language()
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _content_language() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    return str(locale.language) if locale else "fr"


def validation_problem(errors: dict[str, str]) -> Response:
    return problem(422, type_="validation-error", detail=_l("Some fields are invalid: see errors."),
                   errors=errors)


# A refused request leaves nothing behind, even what a service flushed before failing.


def _validation(exc: ValidationError) -> Response:
    db.session.rollback()
    return validation_problem(exc.messages())


def _field_error(exc: FieldError) -> Response:
    # Raised for the body as a whole (not one field): say it in the detail.
    db.session.rollback()
    return problem(422, type_="validation-error", detail=exc.message, errors={})


def _not_found(exc: NotFound) -> Response:
    db.session.rollback()
    return problem(404, type_="not-found")


def _conflict(exc: Conflict) -> Response:
    db.session.rollback()
    return problem(409, type_="conflict", detail=str(exc.args[0]) if exc.args else None)


def _unconfirmed(exc: Unconfirmed) -> Response:
    db.session.rollback()
    return problem(403, type_="email-not-confirmed", detail=exc.message)


def _delayed(exc: Delayed) -> Response:
    # This address must wait before trying this account again; nothing was checked.
    db.session.rollback()
    return problem(429, type_="sign-in-delayed", detail=exc.message(),
                   headers={"Retry-After": str(exc.retry_after)})


def _integrity(exc: IntegrityError) -> Response:
    # Two requests raced past the same check (e.g. one SIRET registered twice).
    db.session.rollback()
    current_app.logger.warning("integrity error on %s %s: %s", request.method, request.path, exc.orig)
    return problem(409, type_="conflict", detail=_l("This conflicts with existing data; reload and retry."))


def _http(exc: HTTPException) -> Response:
    status = exc.code or 500
    detail = getattr(exc, "problem_detail", None)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="matchmaking"'
    allowed = getattr(exc, "valid_methods", None)  # set on MethodNotAllowed
    if status == 405 and allowed:
        headers["Allow"] = ", ".join(allowed)
    return problem(status, detail=detail, headers=headers)


def _unexpected(exc: Exception) -> Response:
    db.session.rollback()
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return problem(500)


def routing_problem() -> Response | None:
    """Unknown /api/ paths and wrong methods: routing fails before any blueprint is chosen, so an
    app-wide hook answers them here rather than the web app's HTML error pages."""
    exc = request.routing_exception
    if exc is None or not request.path.startswith("/api/"):
        return None
    if isinstance(exc, HTTPException) and (exc.code or 500) < 400:
        return None  # redirects (e.g. a missing trailing slash) keep their meaning
    if isinstance(exc, MethodNotAllowed) and not _served_with_another_method(exc):
        exc = NoRoute()
    return _http(exc) if isinstance(exc, HTTPException) else problem(404)


def _served_with_another_method(exc: MethodNotAllowed) -> bool:
    """Werkzeug answers 405 when an id fails its converter (beyond int(max=...)) on the rule for this
    method but a rule for another method was tried first: 405 only if another method really matches."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    for method in set(exc.valid_methods or ()) - {"OPTIONS", "HEAD"}:
        try:
            adapter.match(method=method)
        except HTTPException:
            continue
        return True
    return False


def register(bp: Blueprint) -> None:
    bp.register_error_handler(ValidationError, _validation)
    bp.register_error_handler(FieldError, _field_error)
    bp.register_error_handler(NotFound, _not_found)
    bp.register_error_handler(Conflict, _conflict)
    bp.register_error_handler(Delayed, _delayed)
    bp.register_error_handler(Unconfirmed, _unconfirmed)
    bp.register_error_handler(IntegrityError, _integrity)
    # By status code, so that an app-wide handler for one code (the web app's 404 page) cannot win.
    for code in default_exceptions:
        bp.register_error_handler(code, _http)
    bp.register_error_handler(HTTPException, _http)
    bp.register_error_handler(Exception, _unexpected)
    bp.before_app_request(routing_problem)
