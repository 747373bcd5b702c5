"""The project's RQ workers: ``python manage.py rqworker`` (``settings.RQ``'s
``WORKER_CLASS``), or ``python manage.py rqworker-pool --worker-class
bank.rq_workers.Worker``.

==================  ===========================  ==================================
class               runs each job in             the application, Django's connections
==================  ===========================  ==================================
``Worker``          a child forked for the job   constructed in the child before the
                                                 job; both closed after it
``SimpleWorker``    the worker process           constructed before the first job,
                                                 closed when the worker stops; a
                                                 connection that is broken or past
                                                 ``CONN_MAX_AGE`` replaced before a job
==================  ===========================  ==================================

django-rq's commands close the process's connections before the worker
starts, so no work horse inherits one; ``prepare_store`` does it again for a
class used some other way. The tables are ``migrate``'s, as for the servers.
What else the classes do (JSON jobs only, naming only ``bank.jobs``'
functions; stop signals never lost; a warm shutdown that loses no job; a job
whose horse died run again) is in the shared ``bankaccounts/rq_workers.py``.
"""

from __future__ import annotations

import rq.worker
from django.db import close_old_connections, connections

from bank import jobs
from bank.accounts import bank_accounts, close_bank_accounts
from bankaccounts.rq_workers import ApplicationPerJob, RecipeWorker


class _BankJobs(RecipeWorker):
    """This project's jobs, and its application on Django's connections."""

    job_names = frozenset(f"bank.jobs.{name}" for name in jobs.__all__)

    def prepare_store(self) -> None:
        connections.close_all()  # before any fork: a horse must not share a connection

    def open_application(self) -> None:
        # Django does this around each request; nothing does it around a job.
        close_old_connections()
        bank_accounts()

    def close_application(self) -> None:
        close_bank_accounts()
        connections.close_all()
        for connection in connections.all():
            if connection.settings_dict["OPTIONS"].get("pool"):  # Django's own pool (DJANGO_DB_POOL=1)
                connection.close_pool()  # the pool's connections, not only the one handed back


class Worker(ApplicationPerJob, _BankJobs, rq.worker.Worker):
    """RQ's default worker: a work horse forked for every job, with an application of its own."""


class SimpleWorker(_BankJobs, rq.worker.SimpleWorker):
    """Jobs run in the worker process, on one application kept from the first job to the end."""

    def teardown(self) -> None:
        super().teardown()
        self.close_application()
