"""Webhook tests talk to a real HTTP server in a thread, allow-listed for the test (and only it)."""

from __future__ import annotations

import pytest

from ecrm.core.tests.http_testserver import LocalServer


@pytest.fixture
def receiver(settings):
    srv = LocalServer().start()
    settings.ECRM_OUTBOUND_ALLOWLIST = [f"127.0.0.1:{srv.port}"]
    yield srv
    srv.stop()


@pytest.fixture
def endpoint(cast, receiver):
    from ecrm.webhooks.services import do_create_endpoint

    def _make(events=("ticket.",), path="/hook", name="ERP"):
        return do_create_endpoint(
            actor=cast["admin"], name=name, url=f"{receiver.url}{path}", events=list(events)
        )

    return _make


@pytest.fixture(autouse=True)
def _forget_cached_tables():
    """The per-process subscription and allow-list tables outlive a test's rolled-back rows: empty them
    afterwards, so later tests (of any app) neither see ghost endpoints nor pay a query to dismiss them."""
    yield
    from django.core.cache import cache

    from ecrm.webhooks import selectors

    selectors._subs.update(version=cache.get(selectors.SUBS_VERSION_KEY, 0), rows=[])
    selectors._allow.update(version=cache.get(selectors.ALLOW_VERSION_KEY, 0), rows=[])
