"""The baseline's WSGI entry point, ``wsgi:application``, as the recipe's uwsgi.ini names it.

Importing it sets Django up and opens no connection: Django opens one per
worker, on its first query, after the fork.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ledger_site.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
