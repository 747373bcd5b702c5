"""Granian for the FastAPI recipe. Start it from this folder: python serve_granian.py

Knobs, from the environment: PORT (default 8000), HOST (default 127.0.0.1),
WEB_CONCURRENCY (default 4 worker processes), THREADS, REQUEST_TIMEOUT,
DATABASE_URL (README). Granian forks its workers (on Linux) from its master,
which imports asgi.py (building the app object, and no application); each
worker's lifespan builds the worker's application.
"""

from __future__ import annotations

import asyncio
import os

from granian.utils.proxies import wrap_asgi_with_proxy_headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi import app as recipe_app
from bankaccounts.prefork_signals import GRANIAN_STOP_SIGNALS, hold_in_forked_children, release


def released_once_serving(app: ASGIApp) -> ASGIApp:
    """``app``, releasing the stop signals its worker holds once the worker serves.

    Granian 2.8 loses a stop sent to a worker that is still starting: the
    worker has its master's handlers until it installs its own, and its
    server, started after the lifespan, does not see a stop that came before.
    Its master then kills the worker after ``workers_kill_timeout``, with its
    application never closed. So each worker starts with them held (see
    ``hold_in_forked_children`` below), and this releases them one turn of
    the event loop after the lifespan's startup completes: Granian runs that
    turn only once its server is serving, and a stop held till then is acted
    on as any other.
    """
    releases: list[asyncio.Task[None]] = []

    async def release_next_turn() -> None:
        await asyncio.sleep(0)
        release(GRANIAN_STOP_SIGNALS)

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def send_and_release(message: Message) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                releases.append(asyncio.get_running_loop().create_task(release_next_turn()))

        await app(scope, receive, send_and_release)

    return serve


#: What the workers serve (Granian imports ``serve_granian:app`` in each). The client's
#: address and scheme come from X-Forwarded-For and X-Forwarded-Proto when the
#: connection is from FORWARDED_ALLOW_IPS: loopback by default, as under uvicorn and gunicorn.
app = released_once_serving(
    wrap_asgi_with_proxy_headers(recipe_app, trusted_hosts=os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1")
)

if __name__ == "__main__":
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    hold_in_forked_children(GRANIAN_STOP_SIGNALS)
    Server(
        "serve_granian:app",
        address=os.environ.get("HOST") or "127.0.0.1",
        port=int(os.environ.get("PORT") or "8000"),
        interface=Interfaces.ASGI,
        workers=int(os.environ.get("WEB_CONCURRENCY") or "4"),
        # Granian's default is to stop the whole server when a worker dies. Even so, it
        # stops when a worker it respawned dies within 5.5 s (to Granian, a crash loop):
        # run it under a supervisor that starts it again (systemd's Restart=on-failure).
        respawn_failed_workers=True,
        # On SIGTERM each worker finishes its requests for up to 10 s, runs the
        # lifespan's shutdown (closing the application), and exits; one still busy is killed.
        workers_kill_timeout=10,
        # A request's line and headers in 8 KiB at most (Granian's default: 417 KiB),
        # as gunicorn's and uWSGI's limits: a larger one is refused, unread.
        http1_settings=HTTP1Settings(max_buffer_size=8192),
        log_access=True,
    ).serve()
