"""Portal sign-in by one-time email link: no account enumeration, rate limits, single use, expiry,
tampering, session rotation and sign-out."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from ecrm.customers.tests.factories import make_customer
from ecrm.portal.models import LoginLink
from ecrm.portal.selectors import SESSION_KEY

pytestmark = pytest.mark.django_db

LINK_RE = re.compile(r"http://testserver/portal/login/([A-Za-z0-9_-]+)/")


@pytest.fixture
def wang():
    return make_customer(first_name="Fang", last_name="Wang", email="wang@example.com")


def _ask(client, email, ip="10.0.0.1", capture=None):
    url = reverse("portal:login")
    if capture is None:
        return client.post(url, {"email": email}, REMOTE_ADDR=ip)
    with capture(execute=True):
        return client.post(url, {"email": email}, REMOTE_ADDR=ip)


def _token_from_mail() -> str:
    match = LINK_RE.search(mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


def test_known_address_gets_a_single_use_link_that_signs_in(client, wang, django_capture_on_commit_callbacks):
    response = _ask(client, "  WANG@example.com ", capture=django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["wang@example.com"]
    token = _token_from_mail()
    link = LoginLink.objects.get()
    assert link.customer == wang and link.token_hash != token and len(link.token_hash) == 64
    assert dt.timedelta(minutes=14) < link.expires_at - timezone.now() <= dt.timedelta(minutes=15)

    # GET does not use the link up (mail scanners follow links); it shows a button
    page = client.get(reverse("portal:redeem", args=[token]))
    assert page.status_code == 200 and 'id="redeem"' in page.content.decode()
    link.refresh_from_db()
    assert link.used_at is None

    before_key = client.session.session_key
    signed_in = client.post(reverse("portal:redeem", args=[token]))
    assert signed_in.status_code == 302 and signed_in["Location"] == reverse("portal:home")
    assert client.session[SESSION_KEY] == wang.pk
    assert client.session.session_key != before_key
    link.refresh_from_db()
    assert link.used_at is not None
    home = client.get(reverse("portal:home"))
    assert home.status_code == 200 and "Hello, Fang Wang" in home.content.decode()


def test_unknown_address_gets_the_same_answer_and_no_mail(client, wang, django_capture_on_commit_callbacks):
    known = _ask(client, "wang@example.com", capture=django_capture_on_commit_callbacks)
    unknown = _ask(client, "nobody@example.com", capture=django_capture_on_commit_callbacks)
    assert known.status_code == unknown.status_code == 200
    assert known.content.decode().replace("wang@example.com", "X") == unknown.content.decode().replace(
        "nobody@example.com", "X"
    )
    assert len(mail.outbox) == 1
    rows = [
        (link.email, link.customer_id, link.token_hash is None) for link in LoginLink.objects.order_by("id")
    ]
    assert rows == [("wang@example.com", wang.pk, False), ("nobody@example.com", None, True)]


def test_invalid_address_is_a_field_error(client):
    response = _ask(client, "not-an-email")
    assert response.status_code == 422
    assert "Enter a valid email address." in response.content.decode()
    assert LoginLink.objects.count() == 0


def test_rate_limited_per_address_known_or_not(client, wang, django_capture_on_commit_callbacks):
    for email in ("wang@example.com", "ghost@example.com"):
        for i in range(3):
            assert _ask(client, email, ip=f"10.0.1.{i}").status_code == 200
        refused = _ask(client, email, ip="10.0.2.1", capture=django_capture_on_commit_callbacks)
        assert refused.status_code == 429
        assert "Too many sign-in requests" in refused.content.decode()
    assert LoginLink.objects.count() == 6
    assert len(mail.outbox) == 0  # the first three were not captured; the refused one sent nothing


def test_rate_limited_per_ip(client):
    for i in range(20):
        assert _ask(client, f"user{i}@example.com", ip="10.9.9.9").status_code == 200
    assert _ask(client, "user21@example.com", ip="10.9.9.9").status_code == 429
    assert _ask(client, "user21@example.com", ip="10.9.9.10").status_code == 200
    assert LoginLink.objects.count() == 21


def _fresh_token(client, capture) -> str:
    _ask(client, "wang@example.com", capture=capture)
    return _token_from_mail()


def test_reused_link_is_refused(client, wang, django_capture_on_commit_callbacks):
    token = _fresh_token(client, django_capture_on_commit_callbacks)
    assert client.post(reverse("portal:redeem", args=[token])).status_code == 302
    client.post(reverse("portal:logout"))
    again = client.post(reverse("portal:redeem", args=[token]))
    assert again.status_code == 400
    assert "already been used" in again.content.decode()
    assert SESSION_KEY not in client.session
    assert client.get(reverse("portal:redeem", args=[token])).status_code == 400


def test_expired_link_is_refused(client, wang, django_capture_on_commit_callbacks):
    token = _fresh_token(client, django_capture_on_commit_callbacks)
    LoginLink.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = client.post(reverse("portal:redeem", args=[token]))
    assert response.status_code == 400 and "has expired" in response.content.decode()
    assert SESSION_KEY not in client.session
    assert LoginLink.objects.get().used_at is None


def test_tampered_link_is_refused(client, wang, django_capture_on_commit_callbacks):
    token = _fresh_token(client, django_capture_on_commit_callbacks)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = client.post(reverse("portal:redeem", args=[tampered]))
    assert response.status_code == 400 and "not valid" in response.content.decode()
    assert SESSION_KEY not in client.session
    assert LoginLink.objects.get().used_at is None
    # the genuine link still works afterwards
    assert client.post(reverse("portal:redeem", args=[token])).status_code == 302


def test_sign_out_and_pages_need_a_portal_session(client, wang, cast):
    assert client.get(reverse("portal:orders"))["Location"] == "/portal/login/?next=/portal/orders/"
    client.force_login(cast["admin"])  # a console session is not a portal session
    assert client.get(reverse("portal:orders")).status_code == 302
    session = client.session
    session[SESSION_KEY] = wang.pk
    session.save()
    assert client.get(reverse("portal:orders")).status_code == 200
    client.post(reverse("portal:logout"))
    assert SESSION_KEY not in client.session
    assert client.get(reverse("portal:orders")).status_code == 302
