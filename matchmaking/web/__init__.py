"""Server-rendered pages, French first."""

from flask import Blueprint

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/static")

from . import filters, views  # noqa: E402,F401
