"""Django settings, all from the environment; production unless ``DJANGO_DEBUG=1``.

Required in production:

- ``DJANGO_SECRET_KEY``: a long random string, e.g. from
  ``python -c 'import secrets; print(secrets.token_urlsafe(50))'``.

Optional:

- ``CASSANDRA_HOSTS`` (default ``127.0.0.1:9042``), ``CASSANDRA_KEYSPACE``
  (default ``eventsourcing``), ``CASSANDRA_USERNAME`` and ``CASSANDRA_PASSWORD``,
  ``CASSANDRA_REPLICATION``: the event store (see ``config/cassandra.py``);
- ``ALLOWED_HOSTS``: comma-separated host names (default: the loopback names);
- ``DJANGO_DEBUG``: ``1`` for local development only (a throw-away secret
  key, no HTTPS requirements, Django's debug pages);
- ``DJANGO_SECURE_SSL_REDIRECT``: ``0`` to serve plain HTTP without
  redirecting to HTTPS (default ``1`` in production);
- ``DJANGO_SECURE_HSTS_SECONDS``: how long browsers must use HTTPS only
  (default one hour in production; raise it once HTTPS works everywhere).

``python manage.py check --deploy`` reports no issue with these defaults.
"""

from __future__ import annotations

import secrets

from django.core.exceptions import ImproperlyConfigured

from bankaccounts.hosts import allowed_hosts
from bankaccounts.web import MAX_BODY_BYTES
from config.cassandra import cassandra_settings
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

# No SQL database: the events live in Cassandra, through the application's
# own driver session (bank/accounts.py), and nothing else is stored. Django
# then uses its "dummy" backend, which refuses any query. Add a database
# here when the project grows sessions, auth or models of its own.
DATABASES: dict[str, dict[str, object]] = {}

#: The event-sourced application's environment (read in bank/accounts.py).
EVENTSOURCING_ENV = cassandra_settings()

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
    # The driver logs every connection it opens at INFO; warnings are enough.
    "loggers": {"cassandra": {"level": "WARNING"}},
}
