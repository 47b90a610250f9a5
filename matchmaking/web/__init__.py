"""Server-rendered pages, French first."""

from flask import Blueprint

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")

from . import (  # noqa: E402,F401
    auth,
    filters,
    firm,
    listings,
    matches,
    search,
    security,
    views,
)
