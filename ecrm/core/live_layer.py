"""The embedded mode's channel layer: in memory for the sockets a process holds, relayed to the other
processes of the same install over Unix datagram sockets.

Without Redis, `make run` is one web process (console, API, WebSockets) and one worker. Channels'
`InMemoryChannelLayer` reaches only the sockets of the process that publishes, so everything the
worker published (a routing assignment, an SLA warning, a workflow notification, an email fetched by
IMAP) reached no browser. This layer keeps the in-memory delivery and adds a relay:

- A process that holds sockets (it has called `group_add`) binds `<folder>/<pid>.sock`, a Unix
  datagram socket read by its event loop, and delivers what arrives there to its own groups.
- Every `group_send` delivers locally, then sends one datagram to each other bound socket in the
  folder. A process with no sockets (the worker) only sends.

Datagrams on a Unix socket are reliable and ordered, need no connection and no broker, and cost a
few microseconds. The folder is private to the install's user (mode 0700). Like live updates in
general this is best effort: a peer that is gone (its socket refuses) is removed; a peer whose queue
is full (its loop stalled for a long time) misses the event, which is logged; the page's next load
shows the state from the database either way. Redis (`REDIS_URL`) replaces all of this at scale.
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import json
import logging
import os
import socket
import time
from pathlib import Path

from channels.layers import InMemoryChannelLayer

log = logging.getLogger(__name__)

MAX_DATAGRAM = 200_000  # bytes; Linux's default socket buffer takes about 208 KB
PEERS_TTL = 1.0  # seconds a listing of the folder is reused


class RelayChannelLayer(InMemoryChannelLayer):
    def __init__(self, folder: str | os.PathLike, **kwargs):
        super().__init__(**kwargs)
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._hub: socket.socket | None = None
        self._hub_loop: asyncio.AbstractEventLoop | None = None
        self._hub_path: Path | None = None
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)
        self._peers: list[str] = []
        self._peers_at = 0.0
        self.dropped = 0  # events a full peer could not take (also logged)

    # --- receiving: only a process that holds sockets listens ------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        self._ensure_hub(asyncio.get_running_loop())

    def _ensure_hub(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._hub is not None and self._hub_loop is loop:
            return
        self.close_hub()
        path = self.folder / f"{os.getpid()}.sock"
        path.unlink(missing_ok=True)  # left by an earlier process with the same pid
        hub = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        hub.setblocking(False)
        hub.bind(str(path))
        loop.add_reader(hub.fileno(), self._on_readable)
        self._hub, self._hub_loop, self._hub_path = hub, loop, path
        self._peers_at = 0.0
        atexit.register(path.unlink, missing_ok=True)

    def close_hub(self) -> None:
        if self._hub is None:
            return
        if self._hub_loop is not None and not self._hub_loop.is_closed():
            self._hub_loop.remove_reader(self._hub.fileno())
        self._hub.close()
        if self._hub_path is not None:
            self._hub_path.unlink(missing_ok=True)
        self._hub = self._hub_loop = self._hub_path = None

    def _on_readable(self) -> None:
        while self._hub is not None:
            try:
                data = self._hub.recv(MAX_DATAGRAM + 1)
            except BlockingIOError:
                return
            try:
                frame = json.loads(data)
                group, message = frame["group"], frame["message"]
            except (ValueError, KeyError, TypeError):
                log.warning("live relay: ignored a malformed datagram (%d bytes)", len(data))
                continue
            # local delivery only: relaying again would echo between processes forever
            self._hub_loop.create_task(InMemoryChannelLayer.group_send(self, group, message))

    # --- sending --------------------------------------------------------------------------------

    async def group_send(self, group: str, message: dict) -> None:
        await super().group_send(group, message)
        self.relay(group, message)

    def relay(self, group: str, message: dict) -> None:
        peers = self._live_peers()
        if not peers:
            return
        try:
            data = json.dumps({"group": group, "message": message}, separators=(",", ":")).encode()
        except (TypeError, ValueError):
            log.error("live relay: an event for %s is not JSON and reached only this process", group)
            return
        if len(data) > MAX_DATAGRAM:
            log.error("live relay: an event for %s is %d bytes; only this process got it", group, len(data))
            return
        for peer in peers:
            try:
                self._sender.sendto(data, peer)
            except (ConnectionRefusedError, FileNotFoundError):
                self._forget(peer)
            except BlockingIOError:
                self.dropped += 1
                log.warning("live relay: %s is not reading; an event for %s was dropped", peer, group)
            except OSError as exc:  # a publish after commit must not fail the request for a peer
                if exc.errno == errno.ENOTSOCK:
                    self._forget(peer)
                else:
                    log.warning("live relay: %s refused an event for %s: %s", peer, group, exc)

    def _live_peers(self) -> list[str]:
        now = time.monotonic()
        if now - self._peers_at > PEERS_TTL:
            own = str(self._hub_path) if self._hub_path else None
            try:
                self._peers = [str(p) for p in self.folder.glob("*.sock") if str(p) != own]
            except OSError:
                self._peers = []
            self._peers_at = now
        return self._peers

    def _forget(self, peer: str) -> None:
        """A socket file nobody reads any more (its process died without removing it)."""
        try:
            os.unlink(peer)
        except OSError:
            pass
        self._peers = [p for p in self._peers if p != peer]
