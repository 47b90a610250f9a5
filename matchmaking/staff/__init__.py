"""The CCMA workspace: the facilitation queue and follow-up (facilitators, administrators) and the
circularity statistics (analysts, facilitators, administrators), at /staff."""

from flask import Blueprint

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates", static_folder="static",
               static_url_path="/static")

from . import stats_views, views  # noqa: E402,F401
