"""Known-bad, on purpose: an RQ ``SimpleWorker`` that keeps Django's connection across jobs
without looking at it, as a worker does that nothing tells about jobs.

Django closes a broken or expired connection at the start and end of each
request (``close_old_connections``, on its request signals), and with
``CONN_HEALTH_CHECKS`` it checks a kept one before the request's first query.
Nothing sends those signals around an RQ job. Once the database has restarted
(or a proxy or firewall has dropped the connection), this worker's first job
fails on the dead connection, and so does every job after it: Django marks
the connection as having failed, and only ``close_old_connections`` ever
acts on that. ``bank/rq_workers.py`` calls it before each job.
"""

from __future__ import annotations

from bank.accounts import bank_accounts
from bank.rq_workers import SimpleWorker


class SimpleWorkerKeepingItsConnection(SimpleWorker):
    def open_application(self) -> None:
        bank_accounts()  # and no close_old_connections()
