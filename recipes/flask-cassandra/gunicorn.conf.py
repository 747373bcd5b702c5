"""gunicorn for the Flask + Cassandra recipe. Start it from this folder: gunicorn -c gunicorn.conf.py

Knobs, from the environment: PORT (default 8000), WEB_CONCURRENCY (default 4
worker processes), HOST (default 127.0.0.1), REQUEST_TIMEOUT (default 10
seconds), CASSANDRA_HOSTS (default 127.0.0.1:9042), CASSANDRA_KEYSPACE (default
eventsourcing).
"""

import os

from bankaccounts.prefork_signals import GUNICORN_STOP_SIGNALS, hold_in_forked_children, release
from bankaccounts.timeouts import raise_request_timeout, server_timeout

wsgi_app = "wsgi:app"
bind = f"{os.environ.get('HOST') or '127.0.0.1'}:{os.environ.get('PORT') or '8000'}"
workers = int(os.environ.get("WEB_CONCURRENCY") or "4")

# Import wsgi.py once, in the master, like uWSGI does: it creates the schema
# there, once, and leaves no Cassandra connection behind for workers to inherit.
preload_app = True

# SIGTERM lets workers finish their requests for up to this many seconds.
graceful_timeout = 30
# A request may take REQUEST_TIMEOUT seconds. One that runs 5 s longer (a
# database that hangs) is ended: its worker gets SIGABRT, and worker_abort
# makes that a 503 answer; the worker then exits and is replaced, and one still
# busy a second later is killed (bankaccounts/timeouts.py).
timeout = server_timeout()
accesslog = "-"
# gunicorn's own format, and the client's address as a proxy in front (nginx) sends it.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" forwarded-for=%({x-forwarded-for}i)s'
# gunicorn 27 opens a control socket under $HOME by default; not needed here.
control_socket_disable = True

# Never lose a stop signal. A new worker has the master's signal handlers until
# its own are in place, and a SIGTERM that came then was lost: the master waited
# graceful_timeout, then killed the worker with its application still open.
# Each worker starts with its stop signals held instead, and post_worker_init
# lets them in once the worker's handlers exist (bankaccounts/prefork_signals.py).
hold_in_forked_children(GUNICORN_STOP_SIGNALS)


def pre_exec(server):
    """A master re-executed by SIGUSR2 must not start with its stop signals held."""
    release(GUNICORN_STOP_SIGNALS)


def post_worker_init(worker):
    """Runs in each new worker once it has its own signal handlers: its own application and Cluster.

    Not ``post_fork``: that runs before the worker replaces the master's signal
    handlers, so a SIGTERM arriving while it connects would be lost, and the
    master would wait ``graceful_timeout`` and then kill the worker.
    """
    release(GUNICORN_STOP_SIGNALS)  # the worker's handlers exist: a stop held till now acts
    from bank.accounts import start_worker

    start_worker()


def worker_exit(server, worker):
    """Runs in the worker as it exits (SIGTERM, HUP, max requests): shut its Cluster down."""
    from bank.accounts import stop_worker

    stop_worker()


def worker_abort(worker):
    """SIGABRT: this worker's request ran past ``timeout``. End it with a 503."""
    raise_request_timeout()
