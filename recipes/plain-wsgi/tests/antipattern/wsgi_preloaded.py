"""DO NOT COPY. The application constructed in the master, before the fork.

This is the mistake the recipe exists to prevent, made on purpose so that a
test can show what it does. The module builds the application when it is
imported, which uWSGI (without lazy-apps) and gunicorn (with preload_app) do
in the master process; one query opens a connection in the pool; then every
worker inherits that same connection and uses it at the same time as the
others. It bypasses ``bankaccounts.lifecycle``, which would refuse.
"""

from bank_api import make_app
from bankaccounts.application import construct_application

# construct_application() labels its connections with this process's pid: the master's.
APPLICATION = construct_application()

APPLICATION.recorder.max_notification_id()  # "warm up" the pool before forking

application = make_app(lambda: APPLICATION)
