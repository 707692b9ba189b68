"""The embedded channel layer's relay: what another process of the install publishes (the worker)
reaches the sockets of the process that holds them; dead and stalled peers cost the publisher nothing."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from ecrm.core.live_layer import RelayChannelLayer

ROOT = Path(settings.BASE_DIR)


def _publish_from_another_process(var_dir: Path, group: str, payload: dict) -> None:
    """`ecrm.core.consumers.publish` in a fresh process with the embedded settings (as the worker)."""
    code = (
        "import django, json, sys; django.setup(); from ecrm.core.consumers import publish; "
        "publish(sys.argv[1], json.loads(sys.argv[2]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.base", "ECRM_VAR_DIR": str(var_dir)}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    import json

    subprocess.run(  # noqa: S603
        [sys.executable, "-c", code, group, json.dumps(payload)], cwd=ROOT, env=env, check=True, timeout=60
    )


def test_an_event_published_in_another_process_reaches_this_process_sockets(tmp_path):
    async def scenario():
        layer = RelayChannelLayer(folder=tmp_path / "live")
        channel = await layer.new_channel()
        await layer.group_add("conversations.all", channel)  # this process now holds a socket
        assert (tmp_path / "live" / f"{os.getpid()}.sock").exists()
        await asyncio.to_thread(
            _publish_from_another_process, tmp_path, "conversations.all", {"type": "conversation.assigned", "conversation": 7}
        )  # fmt: skip
        message = await asyncio.wait_for(layer.receive(channel), timeout=5)
        layer.close_hub()
        return message

    message = asyncio.run(scenario())
    assert message == {"type": "live.update", "payload": {"type": "conversation.assigned", "conversation": 7}}


def test_a_relayed_event_is_delivered_locally_and_not_relayed_again(tmp_path):
    async def scenario():
        layer = RelayChannelLayer(folder=tmp_path)
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        relayed = []
        layer.relay = lambda group, message: relayed.append(group)  # would echo between processes
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.sendto(
            b'{"group":"g","message":{"type":"live.update","payload":{"n":1}}}', str(layer._hub_path)
        )
        sender.sendto(b"not json", str(layer._hub_path))  # ignored, the next one still arrives
        sender.sendto(
            b'{"group":"g","message":{"type":"live.update","payload":{"n":2}}}', str(layer._hub_path)
        )
        got = [await asyncio.wait_for(layer.receive(channel), timeout=2) for _ in range(2)]
        layer.close_hub()
        return got, relayed

    got, relayed = asyncio.run(scenario())
    assert [m["payload"]["n"] for m in got] == [1, 2]
    assert relayed == []


def test_a_dead_peer_is_forgotten_and_a_stalled_one_cannot_block_the_publisher(tmp_path, caplog):
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(tmp_path / "999999.sock"))
    dead.close()  # the file stays, nobody reads: as after a crash
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stalled.bind(str(tmp_path / "999998.sock"))  # bound but never read

    async def scenario():
        layer = RelayChannelLayer(folder=tmp_path)
        started = time.perf_counter()
        for n in range(2_000):  # far more than the stalled peer's buffer holds
            await layer.group_send("g", {"type": "live.update", "payload": {"n": n, "pad": "x" * 200}})
        return layer, time.perf_counter() - started

    layer, elapsed = asyncio.run(scenario())
    stalled.close()
    assert not (tmp_path / "999999.sock").exists()
    assert layer.dropped > 0
    assert "is not reading" in caplog.text
    assert elapsed < 5  # never waited on the full peer (2,000 sends take milliseconds)


def test_an_event_that_is_not_json_still_reaches_this_process(tmp_path, caplog):
    other = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    other.bind(str(tmp_path / "999997.sock"))

    async def scenario():
        layer = RelayChannelLayer(folder=tmp_path)
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await layer.group_send("g", {"type": "live.update", "payload": {"when": object()}})
        message = await asyncio.wait_for(layer.receive(channel), timeout=2)
        layer.close_hub()
        return message

    message = asyncio.run(scenario())
    other.close()
    assert message["type"] == "live.update"
    assert "is not JSON" in caplog.text


@pytest.mark.skipif(sys.platform != "linux", reason="Unix datagram sockets")
def test_the_relay_folder_is_private(tmp_path):
    RelayChannelLayer(folder=tmp_path / "live")
    assert (tmp_path / "live").stat().st_mode & 0o077 == 0
