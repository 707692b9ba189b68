"""Django's ASGI handler with the console's requests run on a fixed set of long-lived threads.

Django's own handler gives every request a thread of its own (a fresh `ThreadSensitiveContext`, so a
new single-thread executor), and with it a new database connection: a SQLite connection opened, its
PRAGMAs run and its page cache cold for every request, or a PostgreSQL connection set up for every
request, whatever `CONN_MAX_AGE` says. An agent's reply cost about 21 ms of CPU in the server against
6 ms for the same view in-process, and those threads took the interpreter from the live-chat sockets
(bench/cc_chat.py).

Here a request borrows one of `threads` single-thread executors for its whole life (asgiref's
`ThreadSensitiveContext(executor=...)`: every synchronous part of one request still runs on one
thread, as Django requires) and gives it back at the end. The threads keep their connections
(`CONN_MAX_AGE`) and caches; at most `threads` requests run their synchronous code at once and the
rest wait their turn, as with a threaded WSGI server. Set the number with `ECRM_HTTP_THREADS`.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler


class PooledASGIHandler(ASGIHandler):
    def __init__(self, threads: int = 8):
        super().__init__()
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.executors = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"http-{n}") for n in range(threads)
        ]
        self._idle: asyncio.Queue | None = None
        self._idle_loop: asyncio.AbstractEventLoop | None = None

    def _idle_executors(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self._idle is None or self._idle_loop is not loop:  # one queue per event loop (tests run several)
            self._idle, self._idle_loop = asyncio.Queue(), loop
            for executor in self.executors:
                self._idle.put_nowait(executor)
        return self._idle

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        idle = self._idle_executors()
        executor = await idle.get()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            idle.put_nowait(executor)
