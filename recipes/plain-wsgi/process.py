"""What happens once per deployment, once per worker after the fork, and at exit.

Both servers call these from their hooks (``wsgi.py`` for uWSGI,
``gunicorn.conf.py`` for gunicorn), so the code that builds and closes the
application lives in one place.
"""

from __future__ import annotations

from bankaccounts.application import SCHEMA_EXISTS, BankAccounts, create_schema
from bankaccounts.lifecycle import close_application, init_application

__all__ = ["create_schema", "start_worker", "stop_worker"]


def start_worker() -> BankAccounts:
    """Construct this worker's application, with connections of its own.

    The schema already exists: ``wsgi.py`` created it in the master.
    """
    return init_application(env=SCHEMA_EXISTS)


def stop_worker() -> None:
    """Close this worker's application: its connections end cleanly."""
    close_application()
