"""The Django project: settings from the environment, the root URLconf, and the Celery app.

The Celery app is imported with the project, so that the tasks a view sends
(``bank.tasks``) use its settings in the web server's processes too.
"""

from config.celery_app import app as celery_app

__all__ = ["celery_app"]
