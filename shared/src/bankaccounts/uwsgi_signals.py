"""Imported by ``uwsgi.ini`` in the master (``shared-import``): every worker uWSGI
forks starts with SIGHUP and SIGTERM held, until ``hook-accepting`` releases
them. Why: :mod:`bankaccounts.prefork_signals`."""

from bankaccounts.prefork_signals import UWSGI_STOP_SIGNALS, hold_in_forked_children

hold_in_forked_children(UWSGI_STOP_SIGNALS)
