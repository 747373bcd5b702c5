"""The WSGI entry point that uwsgi.ini and gunicorn.conf.py name: ``wsgi:app``.

It makes the app from ``production.ini``, exactly as ``pserve`` would, with
logging configured from the same file. Both servers import it once, in the
master process: making the app creates the tables and then closes every
connection it opened, and the event-sourced application is not constructed
here but by each worker, on its first request.
"""

import atexit
from pathlib import Path

from pyramid.paster import get_app, setup_logging

from bankaccounts.lifecycle import close_application
from bankaccounts.request_body import read_whole_body

CONFIG = str(Path(__file__).resolve().with_name("production.ini"))

setup_logging(CONFIG)
# Each body read whole and checked first (bankaccounts/request_body.py): a chunked
# body, or a malformed or short one, is answered there.
app = read_whole_body(get_app(CONFIG, "main"))

# Each worker inherits this registration and, when it exits, closes the
# application it constructed. In the master there is nothing to close.
atexit.register(close_application)
