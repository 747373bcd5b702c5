"""Baseline for the Django + Cassandra recipe: its production settings, with a plain ``ledger`` app.

The same middleware, no SQL database (``DATABASES = {}``), the same HTTPS
settings and logging as recipes/django-cassandra/config/settings.py, so that
the only difference measured is event sourcing. Needs ``DJANGO_SECRET_KEY``,
as the recipe does; ``CASSANDRA_HOSTS`` and ``CASSANDRA_KEYSPACE`` say where
the ``accounts`` table is.
"""

from __future__ import annotations

import os

from bankaccounts.web import MAX_BODY_BYTES

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
DATABASES: dict[str, dict[str, object]] = {}

CASSANDRA_HOSTS = os.environ.get("CASSANDRA_HOSTS") or "127.0.0.1:9042"
CASSANDRA_KEYSPACE = os.environ.get("CASSANDRA_KEYSPACE") or "ledger"
CASSANDRA_REPLICATION = (
    os.environ.get("CASSANDRA_REPLICATION") or "{'class': 'SimpleStrategy', 'replication_factor': 1}"
)

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False
APPEND_SLASH = False
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = os.environ.get("DJANGO_SECURE_SSL_REDIRECT", "1") not in ("0", "false", "no", "off")
SECURE_REDIRECT_EXEMPT = [r"^health$"]
SECURE_HSTS_SECONDS = 3600
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_SECURE = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"with_pid": {"format": "%(asctime)s [%(process)d] %(name)s %(levelname)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "with_pid"}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
    "loggers": {"cassandra": {"level": "WARNING"}},
}
