"""CSRF on every form, security headers, friendly error pages (JSON under /api)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import abort, current_app, g, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from ..extensions import csrf, db, db_session
from ..services import audit, visibility
from ..services.errors import Conflict, NotFound
from ..services.verification import Unconfirmed
from . import bp
from .common import user


def _is_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


@bp.before_app_request
def protect_forms() -> None:
    # The JSON API authenticates with bearer tokens, which a foreign page cannot send.
    if not _is_api():
        csrf.protect(apply_exemptions=True)
        # No form of ours takes control characters such as NUL, which PostgreSQL refuses in text.
        if any("\x00" in value for values in (request.args, request.form) for value in values.values()):
            abort(400)


_told_about_proxies: set[str] = set()


@bp.before_app_request
def notice_an_untrusted_proxy() -> None:
    """A forwarded address arrives while no proxy is trusted: either the app sits behind a proxy and
    TRUSTED_PROXIES is not set (every client then shares the proxy's address and its rate limits),
    or a client is forging the header (which changes nothing). Said once per process."""
    if ("X-Forwarded-For" in request.headers and not current_app.config.get("TRUSTED_PROXIES")
            and not _told_about_proxies):
        _told_about_proxies.add("X-Forwarded-For")
        current_app.logger.warning(
            "X-Forwarded-For received from %s but TRUSTED_PROXIES is 0: behind a reverse proxy, set it to "
            "the number of proxies, or every client shares one address for rate limits", request.remote_addr)


def tile_origin(template: str) -> str | None:
    """The origin to allow images from for a tile URL template ("{s}" becomes a wildcard)."""
    parts = urlsplit(template.replace("{s}", "SUBDOMAIN"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    host = parts.netloc.replace("SUBDOMAIN", "*")
    return f"{parts.scheme}://{host}"


def content_security_policy() -> str:
    images = ["'self'", "data:"]
    origin = tile_origin(str(current_app.config.get("MAP_TILE_URL") or ""))
    if origin:
        images.append(origin)
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src " + " ".join(images),
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


@bp.after_app_request
def security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy())
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if response.mimetype == "text/html":
        # Pages can show another firm's contact: no shared cache keeps them.
        headers.setdefault("Cache-Control", "no-store")
    return response


@bp.after_app_request
def audit_disclosures(response: Response) -> Response:
    """Anonymous listings a facilitator or administrator saw in full (a page, the API): one audit row."""
    shown = visibility.take_disclosed(db_session())
    if shown and response.status_code < 400:
        actor = g.get("api_user") or user()
        audit.record(db_session(), actor, audit.LISTINGS_DISCLOSED, "listing", listing_ids=sorted(shown),
                     endpoint=request.endpoint)
        db.session.commit()
    return response


def _error(status: int, title: Any, message: Any) -> tuple[Any, int]:
    db.session.rollback()
    if _is_api():
        return jsonify({"status": status, "title": str(title), "detail": str(message)}), status
    return render_template("error.html", status=status, title=title, message=message), status


@bp.app_errorhandler(404)
@bp.app_errorhandler(NotFound)
def not_found(exc: Exception) -> tuple[Any, int]:
    return _error(404, _l("Page not found"),
                  _l("This page does not exist, or it is not yours to see. Check the address, or go back."))


@bp.app_errorhandler(405)
def not_allowed(exc: Exception) -> tuple[Any, int]:
    return _error(405, _l("Not possible here"), _l("This address does not accept that action."))


@bp.app_errorhandler(Conflict)
def conflict(exc: Conflict) -> tuple[Any, int]:
    return _error(409, _l("Not possible now"), exc.args[0] if exc.args else "")


@bp.app_errorhandler(Unconfirmed)
def unconfirmed(exc: Unconfirmed) -> tuple[Any, int]:
    return _error(403, _l("Confirm your e-mail address"), exc.message)


@bp.app_errorhandler(CSRFError)
def csrf_failed(exc: CSRFError) -> tuple[Any, int]:
    return _error(400, _l("The form has expired"),
                  _l("For your security, forms stop working after a while or when you sign in elsewhere. "
                     "Go back, reload the page and send it again."))


@bp.app_errorhandler(RateLimitExceeded)
def too_many(exc: RateLimitExceeded) -> tuple[Any, int]:
    return _error(429, _l("Too many attempts"),
                  _l("Too many attempts from your connection. Wait a few minutes and try again."))


@bp.app_errorhandler(413)
def too_large(exc: Exception) -> tuple[Any, int]:
    return _error(413, _l("File too large"), _l("The file is too large (at most 10 MB)."))


@bp.app_errorhandler(400)
def bad_request(exc: Exception) -> tuple[Any, int]:
    return _error(400, _l("Bad request"), _l("The request could not be understood. Go back and try again."))


@bp.app_errorhandler(500)
def server_error(exc: Exception) -> tuple[Any, int]:
    return _error(500, _l("Something went wrong"),
                  _l("An unexpected error occurred on our side; nothing you did. Try again in a moment."))


@bp.app_errorhandler(HTTPException)
def other_http_error(exc: HTTPException) -> tuple[Any, int]:
    status = exc.code or 500
    return _error(status, exc.name, exc.description or "")
