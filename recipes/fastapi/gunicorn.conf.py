"""gunicorn with uvicorn's worker, for the FastAPI recipe. Start it from this folder:
gunicorn -c gunicorn.conf.py

Knobs, from the environment: PORT (default 8000), HOST (default 127.0.0.1),
WEB_CONCURRENCY (default 4 worker processes), THREADS, REQUEST_TIMEOUT,
DATABASE_URL (README). gunicorn forks its workers; each runs an event loop,
and each worker's application is built by the lifespan, after the fork.
"""

import os

wsgi_app = "asgi:app"
worker_class = "uvicorn_worker.UvicornWorker"
bind = f"{os.environ.get('HOST') or '127.0.0.1'}:{os.environ.get('PORT') or '8000'}"
workers = int(os.environ.get("WEB_CONCURRENCY") or "4")
# Not preload_app: the master would import asgi.py for nothing (the lifespan
# builds the application in each worker either way).
preload_app = False
# SIGTERM: workers finish their requests for up to 10 s, close their applications, exit.
graceful_timeout = 10
# A worker whose event loop does not tick for 30 s (blocked: never by the
# application, which runs in threads) is killed and replaced.
timeout = 30
accesslog = "-"
# gunicorn 27 opens a control socket under $HOME by default; not needed here.
control_socket_disable = True
