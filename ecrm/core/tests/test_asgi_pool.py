"""The console's ASGI handler runs requests on a fixed set of long-lived threads: a thread and its
database connection serve request after request, concurrency is bounded by the pool, and a failing
request gives its thread back."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from ecrm.core.asgi import PooledASGIHandler

from . import asgi_urls

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("ecrm.core.tests.asgi_urls")]


async def _get(app, path: str) -> tuple[int, dict | None]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}  # fmt: skip
    comm = ApplicationCommunicator(app, scope)
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await comm.receive_output(5)
    body = b""
    while True:
        message = await comm.receive_output(5)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await comm.wait(1)
    return start["status"], json.loads(body) if start["status"] == 200 else None


def test_requests_reuse_the_pool_threads_and_their_database_connections(settings):
    app = PooledASGIHandler(threads=1)

    async def scenario():
        return [await _get(app, "/who/") for _ in range(3)]

    responses = async_to_sync(scenario)()
    assert {status for status, _ in responses} == {200}
    assert {body["thread"] for _, body in responses} == {"http-0_0"}
    if settings.DATABASES["default"].get("CONN_MAX_AGE"):  # persistent connections: one for all three
        assert len({body["connection"] for _, body in responses}) == 1


def test_no_more_requests_run_at_once_than_the_pool_has_threads():
    app = PooledASGIHandler(threads=2)
    asgi_urls.RUNNING.update(now=0, most=0)

    async def scenario():
        return await asyncio.gather(*(_get(app, "/slow/") for _ in range(5)))

    responses = async_to_sync(scenario)()
    assert [status for status, _ in responses] == [200] * 5
    assert asgi_urls.RUNNING["most"] == 2
    assert {body["thread"] for _, body in responses} == {"http-0_0", "http-1_0"}


def test_a_failing_request_gives_its_thread_back():
    app = PooledASGIHandler(threads=1)

    async def scenario():
        failed = await _get(app, "/boom/")
        after = await asyncio.wait_for(_get(app, "/who/"), timeout=5)
        return failed, after

    (failed_status, _), (status, body) = async_to_sync(scenario)()
    assert failed_status == 500
    assert status == 200 and body["thread"] == "http-0_0"


def test_a_pool_needs_a_thread():
    with pytest.raises(ValueError):
        PooledASGIHandler(threads=0)
