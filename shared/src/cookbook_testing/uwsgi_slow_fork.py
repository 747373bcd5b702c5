"""For a test: uWSGI's master pauses after each fork, before it records the new worker.

Add ``--shared-import cookbook_testing.uwsgi_slow_fork`` after the recipe's
``--ini uwsgi.ini``. uWSGI 2.0 runs Python's fork callbacks (with
``py-call-uwsgi-fork-hooks``) just before it writes down the new worker's pid;
this one makes that moment last ``PAUSE_SECONDS``, long enough for a test to
send its stop into it, every time rather than once in many runs.
"""

from __future__ import annotations

import os
import time

PAUSE_SECONDS = 1.0
_master = os.getpid()  # shared-import runs in the master


def _pause_in_the_master() -> None:
    if os.getpid() == _master:
        time.sleep(PAUSE_SECONDS)


try:
    import uwsgi  # noqa: F401  (a module only uWSGI's processes have)
except ImportError:
    # Imported elsewhere, for PAUSE_SECONDS (the test suites do): no pause there. With
    # one, every fork in a test process took a second longer (eight processes in a
    # test: 8 s instead of 0.05).
    pass
else:
    os.register_at_fork(after_in_parent=_pause_in_the_master)
