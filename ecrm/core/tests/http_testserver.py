"""A real local HTTP server in a thread for outbound-HTTP tests, and an audit hook that watches (and can
block) every socket connect and DNS lookup Python makes, so tests prove what was or was not contacted.

Audit hooks cannot be removed, so the hook is installed once per process and does nothing unless a test
has switched it on with `watch_sockets()`.
"""

from __future__ import annotations

import contextlib
import http.server
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class LocalServer:
    """Answers with the queued replies in order (then 200 "ok"), recording every request."""

    def __init__(self, tls: Any = None) -> None:
        """`tls`: an ssl.SSLContext (server side) to serve https instead of http."""
        self.requests: list[Recorded] = []
        self.scheme = "https" if tls is not None else "http"
        self.replies: list[Reply | Callable[[Recorded], Reply]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                rec = Recorded(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                server.requests.append(rec)
                reply = server.replies.pop(0) if server.replies else Reply()
                if callable(reply):
                    reply = reply(rec)
                if reply.delay:
                    import time

                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_HEAD = _handle  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> LocalServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class SocketWatch:
    connects: list[tuple] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    # addresses (host, port) a connect is allowed to reach; any other connect is refused by the hook
    # itself, so a guard bug can never actually reach 10.0.0.1 or a metadata service from a test
    allow: Callable[[tuple], bool] | None = None


_state: dict[str, SocketWatch | None] = {"watch": None}
_installed = False


def _hook(event: str, args: tuple) -> None:
    watch = _state["watch"]
    if watch is None:
        return
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple):
            address = (str(address[0]), int(address[1]))
            watch.connects.append(address)
            if watch.allow is not None and not watch.allow(address):
                raise ConnectionRefusedError(f"test audit hook blocked a connect to {address}")
    elif event == "socket.getaddrinfo":
        watch.lookups.append(str(args[0]))


@contextlib.contextmanager
def watch_sockets(allow: Callable[[tuple], bool] | None = None) -> Iterator[SocketWatch]:
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    watch = SocketWatch(allow=allow)
    _state["watch"] = watch
    try:
        yield watch
    finally:
        _state["watch"] = None
