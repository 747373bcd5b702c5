"""The WSGI entry point that uwsgi.ini and gunicorn.conf.py name: ``wsgi:app``.

Imported once in the server's master process. ``create_app()`` opens no
connection that survives it, and the event-sourced application is not
constructed here: each worker constructs its own on its first request.
"""

import atexit
import logging

from bank import create_app
from bankaccounts.lifecycle import close_application

logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(name)s %(levelname)s: %(message)s")

app = create_app()

# Each worker inherits this registration and, when it exits, closes the
# application it constructed. In the master there is nothing to close.
atexit.register(close_application)
