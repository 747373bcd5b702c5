"""DO NOT COPY. The application constructed in the worker process, before RQ forks a horse per job.

This is the mistake the recipe's worker classes exist to prevent, made on
purpose so that a test can show what happens: every horse inherits the
worker's application, and its database connections, from the fork. The
process's application slot (``bankaccounts.lifecycle``) notices that it is
being asked for an application another process constructed, and refuses with
``ApplicationForkedError``, so each job fails instead of talking to the
database over a connection that another process owns.
"""

from __future__ import annotations

from typing import Any

import workers
from bankaccounts.lifecycle import init_application


class ConstructedBeforeForkWorker(workers.Worker):
    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        init_application(env=workers.APPLICATION_ENV)  # in the worker process: every horse inherits it
