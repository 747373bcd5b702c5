"""uvicorn for the FastAPI recipe. Start it from this folder: python serve_uvicorn.py

Knobs, from the environment: PORT (default 8000), HOST (default 127.0.0.1),
WEB_CONCURRENCY (default 4 worker processes), THREADS, REQUEST_TIMEOUT,
DATABASE_URL (README). uvicorn's supervisor *spawns* its workers: each is a
new Python that imports asgi.py itself, so no fork hook ever runs, and each
worker's application is built by the lifespan. It replaces a worker that dies.
"""

import logging
import os

import uvicorn
from uvicorn.supervisors import Multiprocess

if __name__ == "__main__":  # spawned workers import this file as __mp_main__: they must not serve
    # The supervisor's lines (workers started, died, replaced) in the workers' format (asgi.py).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(name)s %(levelname)s: %(message)s")
    config = uvicorn.Config(
        "asgi:app",
        host=os.environ.get("HOST") or "127.0.0.1",
        port=int(os.environ.get("PORT") or "8000"),
        workers=int(os.environ.get("WEB_CONCURRENCY") or "4"),
        # On SIGTERM each worker stops accepting, finishes the requests it has
        # for up to 10 s, runs the lifespan's shutdown (closing the application), and exits.
        timeout_graceful_shutdown=10,
        # On SIGHUP uvicorn (0.51+) replaces one worker at a time, and gives the
        # reload up, keeping the old workers, if a new one is not serving within
        # this many seconds. Its default, 5, is less than a spawned worker can take
        # to import FastAPI and build its application on a busy machine (a test
        # run's reload was given up so). It also bounds the supervisor's liveness
        # ping: a worker that does not answer for 30 s is killed and replaced. A
        # worker that dies while a ping waits for its answer is noticed only then,
        # 30 s on: the supervisor holds its end of their pipe, so no EOF comes.
        timeout_worker_healthcheck=30,
        # The client's address and scheme from X-Forwarded-For and X-Forwarded-Proto,
        # believed from the addresses in FORWARDED_ALLOW_IPS only (uvicorn's default:
        # loopback, where nginx runs in front), as gunicorn's uvicorn worker does.
        proxy_headers=True,
        server_header=False,
        log_config=None,  # asgi.py's logging: one format for every line
    )
    # The supervisor even for one worker (uvicorn.run would serve in this
    # process then): a worker that dies is always replaced, and SIGHUP reloads.
    Multiprocess(config, sockets=[config.bind_socket()]).run()
