"""Baseline for the Django recipe: its production settings, with a plain ``ledger`` app.

The same middleware, connection reuse (``DJANGO_CONN_MAX_AGE``, default 60),
transactions (``ATOMIC_REQUESTS`` off; writing views own theirs) and SQLite
options (WAL, ``IMMEDIATE`` transactions, a 20 s busy timeout) as
recipes/django-orm/config/settings.py, so that the only difference measured is
event sourcing. Needs ``DJANGO_SECRET_KEY``, as the recipe does.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlsplit

from bankaccounts.config import DatabaseConfig

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
INSTALLED_APPS = ["ledger"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "ledger_site.urls"
WSGI_APPLICATION = "wsgi.application"

CONN_MAX_AGE = int(os.environ.get("DJANGO_CONN_MAX_AGE") or 60)
_config = DatabaseConfig.from_env()
if _config.store == "sqlite":
    assert _config.sqlite_path is not None
    _config.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    _database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(_config.sqlite_path),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL"},
    }
else:
    _database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _config.dbname,
        "USER": _config.user,
        "PASSWORD": _config.password,
        "HOST": _config.host,
        "PORT": _config.port,
        "OPTIONS": {k: v for k, v in parse_qsl(urlsplit(_config.url).query) if k not in ("host", "port")},
    }
DATABASES = {
    "default": {
        **_database,
        "CONN_MAX_AGE": CONN_MAX_AGE,
        "CONN_HEALTH_CHECKS": CONN_MAX_AGE > 0,
        "ATOMIC_REQUESTS": False,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False
APPEND_SLASH = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = os.environ.get("DJANGO_SECURE_SSL_REDIRECT", "1") not in ("0", "false", "no", "off")
