"""Django settings, all from the environment; production unless ``DJANGO_DEBUG=1``.

Required in production:

- ``DJANGO_SECRET_KEY``: a long random string, e.g. from
  ``python -c 'import secrets; print(secrets.token_urlsafe(50))'``.

Optional:

- ``DATABASE_URL``: ``sqlite:///path`` or ``postgresql://user:password@host:port/dbname``
  (default: the SQLite file ``var/bankaccounts.sqlite3``);
- ``ALLOWED_HOSTS``: comma-separated host names (default: the loopback names);
- ``DJANGO_DEBUG``: ``1`` for local development only (a throw-away secret
  key, no HTTPS requirements, Django's debug pages);
- ``DJANGO_SECURE_SSL_REDIRECT``: ``0`` to serve plain HTTP without
  redirecting to HTTPS (default ``1`` in production);
- ``DJANGO_SECURE_HSTS_SECONDS``: how long browsers must use HTTPS only
  (default one hour in production; raise it once HTTPS works everywhere);
- ``DJANGO_CONN_MAX_AGE``: seconds a worker keeps its database connection
  for the next request (default 60; 0 closes it after each request).

``python manage.py check --deploy`` reports no issue with these defaults.
"""

from __future__ import annotations

import secrets

from django.core.exceptions import ImproperlyConfigured

from bankaccounts.hosts import allowed_hosts
from bankaccounts.web import MAX_BODY_BYTES
from config.database import database_settings
from config.environment import env_flag, env_int, env_str

DEBUG = env_flag("DJANGO_DEBUG", False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        msg = (
            "DJANGO_SECRET_KEY is not set. Set it to a long random string, e.g. the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))', "
            "or set DJANGO_DEBUG=1 for local development"
        )
        raise ImproperlyConfigured(msg)
    # Development only: a key of this process's own, thrown away when it exits.
    SECRET_KEY = "django-insecure-" + secrets.token_urlsafe(50)

# The knob, default and matching every recipe shares (bankaccounts/hosts.py).
ALLOWED_HOSTS = allowed_hosts()

INSTALLED_APPS = [
    "eventstore",
    "bank",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Checks the Host header against ALLOWED_HOSTS on every request.
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "wsgi.application"

DATABASES = {
    "default": {
        **database_settings(env_str("DATABASE_URL"), conn_max_age=env_int("DJANGO_CONN_MAX_AGE", 60)),
        # Writing views own their transactions, so that a write conflict can
        # roll back and re-run the whole view (see bank/transactions.py).
        "ATOMIC_REQUESTS": False,
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False

# A JSON API: no trailing-slash redirects, and bodies no larger than the contract allows.
APPEND_SLASH = False
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES

# HTTPS. The servers listen on loopback, behind a proxy that terminates TLS and
# sets X-Forwarded-Proto (overwriting whatever the client sent); Django trusts
# that header to know the original scheme. /health and /ready stay reachable
# over plain HTTP for probes on the machine itself.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_flag("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$"]
# HSTS starts at an hour, short enough to undo a mistake. Browsers' preload
# lists accept a site only from a max-age of a year, so the preload flag
# commits to nothing until DJANGO_SECURE_HSTS_SECONDS is raised that far.
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG

# One line per record on stderr, with the process id: the servers' logs show
# which worker constructed and closed which application.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "with_pid": {"format": "%(asctime)s [%(process)d] %(name)s %(levelname)s: %(message)s"},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "with_pid"},
    },
    "root": {"handlers": ["stderr"], "level": "INFO"},
}
