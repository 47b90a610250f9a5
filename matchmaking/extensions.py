"""Flask extensions, created unbound and initialised in create_app()."""

from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from .models import Base

db = SQLAlchemy(model_class=Base)
babel = Babel()
login_manager = LoginManager()
csrf = CSRFProtect()
# Storage comes from RATELIMIT_STORAGE_URI (Redis when REDIS_URL is set); no limit applies by default,
# only the ones declared on sign-in, registration and password reset.
limiter = Limiter(key_func=get_remote_address)
