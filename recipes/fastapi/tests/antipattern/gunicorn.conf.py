"""DO NOT COPY. gunicorn running tests/antipattern/asgi_preloaded.py with preload_app:
the application is built in the master, then every worker inherits it."""

import os

wsgi_app = "tests.antipattern.asgi_preloaded:app"
worker_class = "uvicorn_worker.UvicornWorker"
bind = f"127.0.0.1:{os.environ['PORT']}"
workers = int(os.environ["WEB_CONCURRENCY"])
preload_app = True
control_socket_disable = True
