"""Shared fixtures: the named cast (one user per role, two agents on different teams, and a user who
must see nothing), API keys of each scope, a JSON API client, and a headless Chromium for the
real-browser tests."""

from __future__ import annotations

import os

import orjson
import pytest
from django.test import Client

from ecrm.core.demo import DEMO_PASSWORD, ensure_demo_users
from ecrm.core.models import ApiKeyScope
from ecrm.core.services import do_create_api_key


@pytest.fixture
def cast(db):
    """{'admin': User, 'manager': …, 'agent_li', 'agent_bob', 'marketer', 'analyst', 'nobody'}"""
    return {u.username: u for u in ensure_demo_users()}


@pytest.fixture
def login(client, cast):
    """Sign a cast member in on the test client: `login('manager')`."""

    def _login(username: str) -> Client:
        client.force_login(cast[username])
        return client

    return _login


CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own download does not work here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture
def chromium():
    """A headless Debian Chromium (Playwright's sync API). Playwright runs an event loop in the test's
    thread, so Django's async-safety check is lifted for browser tests."""
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def password():
    return DEMO_PASSWORD


class ApiClient:
    """A thin JSON client for the REST API with a given raw key."""

    def __init__(self, raw_key: str | None):
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"} if raw_key else {}

    def _call(
        self, method, path, data=None, raw: bytes | None = None, content_type="application/json", **extra
    ):
        body = raw if raw is not None else (orjson.dumps(data) if data is not None else b"")
        fn = getattr(self.client, method)
        return fn(path, data=body, content_type=content_type, **self.headers, **extra)

    def get(self, path, **params):
        return self.client.get(path, params, **self.headers)

    def post(self, path, data=None, **kw):
        return self._call("post", path, data, **kw)

    def put(self, path, data=None, **kw):
        return self._call("put", path, data, **kw)

    def patch(self, path, data=None, **kw):
        return self._call("patch", path, data, **kw)

    def delete(self, path, **kw):
        return self.client.delete(path, **self.headers, **kw)


@pytest.fixture
def api_keys(db):
    keys = {}
    for scope in ApiKeyScope.values:
        _, raw = do_create_api_key(name=f"test-{scope}", scope=scope, actor=None)
        keys[scope] = raw
    return keys


@pytest.fixture
def api(api_keys):
    """API client with a write key."""
    return ApiClient(api_keys["write"])


@pytest.fixture
def api_read(api_keys):
    return ApiClient(api_keys["read"])


@pytest.fixture
def api_anon(db):
    return ApiClient(None)
