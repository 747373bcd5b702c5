"""The project's Celery app: start a worker with ``celery -A config.celery_app worker``.

Its settings are Django's ``CELERY_*`` settings (``config/settings.py``), its
tasks each app's ``tasks.py``. The settings module is named before the app is
created: Celery installs its Django fixup only if ``DJANGO_SETTINGS_MODULE`` is
set then, and without the fixup a prefork worker's children share the
database connections their parent opened (see the README).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
