"""A known-bad set-up, for the tests only: the project's Celery app without
Celery's Django fixup (an app created before ``DJANGO_SETTINGS_MODULE`` was
set, say), whose worker uses the database before it forks its children (a
start-up check). Every prefork child then inherits that one connection, and
they all use it at once.

Run from the recipe folder: ``celery -A tests.celery_without_django_fixup worker``.
"""

from typing import Any

import django
from celery import Celery, signals
from django.db import connection

import config  # noqa: F401 - names the settings module

django.setup()  # what the fixup would have done

app = Celery("without-fixup", fixups=[])
app.config_from_object("django.conf:settings", namespace="CELERY")
# Short time limits: a child left waiting for an answer another child read ends soon.
app.conf.update(include=["bank.tasks"], task_soft_time_limit=4, task_time_limit=5)


@signals.worker_init.connect
def check_the_database(**_: Any) -> None:
    with connection.cursor() as cursor:  # opens the connection the children inherit
        cursor.execute("SELECT 1")
