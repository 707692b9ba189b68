"""Browser-test fixtures. `asgi_live_server`: the real ASGI application (HTTP and WebSocket, as in
production) served by uvicorn in a thread on a free port, against the test database. pytest-django's
`live_server` is WSGI and cannot carry WebSockets; use this one for live chat and live updates, with
`@pytest.mark.django_db(transaction=True)` so the server sees what the test wrote."""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


@dataclass
class AsgiLiveServer:
    url: str
    ws_url: str
    port: int


@pytest.fixture
def asgi_live_server(transactional_db):
    import uvicorn
    from asgiref.sync import sync_to_async
    from channels.layers import channel_layers
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.db import connections

    from config.asgi import application

    # A fresh in-memory channel layer bound to the server's event loop, not to an earlier test's.
    channel_layers.backends.clear()
    # SQLite's in-memory test database exists once per connection: the server's Django thread must use
    # the test's own connection (as pytest-django's live_server does). PostgreSQL needs nothing.
    shared = connections["default"]
    share = shared.vendor == "sqlite" and shared.is_in_memory_db()
    if share:
        shared.inc_thread_sharing()

    def adopt_connection() -> None:
        connections["default"] = shared

    ready = threading.Event()

    async def app(scope, receive, send):
        if share and not ready.is_set():
            await sync_to_async(adopt_connection, thread_sensitive=True)()
            ready.set()
        await static_app(scope, receive, send)

    static_app = ASGIStaticFilesHandler(application)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="websockets-sansio", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield AsgiLiveServer(url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}", port=port)
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
    # The request threads outlive the server (config.asgi's pool) and keep their connections: close
    # them, or PostgreSQL refuses to drop the test database at the end of the run.
    from config.asgi import django_asgi_app

    for executor in django_asgi_app.executors:
        executor.submit(connections.close_all).result(timeout=10)
    channel_layers.backends.clear()
    if share:
        shared.dec_thread_sharing()
