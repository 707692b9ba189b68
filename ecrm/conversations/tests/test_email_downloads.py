"""Attachment downloads: stored outside the web root, served only to who may see the conversation,
always as a download that the browser will not sniff or render."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from ecrm.conversations.channels.email.inbound import ingest_raw_email
from ecrm.conversations.models import Attachment
from ecrm.conversations.services import create_inbox
from ecrm.core.models import AuditLog, Team

FIXTURES = Path(__file__).parent / "fixtures" / "mail"


@pytest.fixture
def attachments(cast):
    inbox = create_inbox(actor=cast["admin"], name="CN", kind="email", team=Team.objects.get(name="Service CN"),
                         config={"from_address": "cn@shop.example"})  # fmt: skip
    msg = ingest_raw_email(
        inbox=inbox, raw=(FIXTURES / "multipart_attachments.eml").read_bytes()
    ).result.message
    return {a.filename: a for a in msg.attachments.all()}


def test_an_attachment_is_stored_outside_the_web_root(attachments):
    path = Path(attachments["发票.pdf"].file.path).resolve()
    assert path.is_relative_to(Path(settings.PRIVATE_FILES_ROOT).resolve())
    assert not path.is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    assert not path.is_relative_to(Path(settings.STATIC_ROOT).resolve())


def test_an_agent_on_the_team_downloads_it_as_an_attachment(attachments, login):
    att = attachments["发票.pdf"]
    resp = login("agent_li").get(reverse("conversations:attachment", args=[att.pk]))
    assert resp.status_code == 200
    assert b"".join(resp.streaming_content) == b"%PDF-1.4\n% test\n"
    assert resp["Content-Type"] == "application/pdf"
    assert resp["Content-Disposition"] == "attachment; filename*=utf-8''%E5%8F%91%E7%A5%A8.pdf"
    assert resp["X-Content-Type-Options"] == "nosniff"
    assert resp["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "no-store" in resp["Cache-Control"]


def test_a_type_outside_the_allow_list_is_served_as_octet_stream(attachments, login):
    att = attachments["photo.png"]
    Attachment.objects.filter(pk=att.pk).update(content_type="text/html")  # e.g. an older row
    resp = login("manager").get(reverse("conversations:attachment", args=[att.pk]))
    assert resp.status_code == 200 and resp["Content-Type"] == "application/octet-stream"
    assert resp["Content-Disposition"].startswith("attachment;")


@pytest.mark.parametrize(("user", "status"), [("agent_bob", 404), ("nobody", 403), ("marketer", 403)])
def test_people_who_may_not_see_the_conversation_get_nothing(attachments, login, user, status):
    att = attachments["发票.pdf"]
    audit_before = AuditLog.objects.count()
    resp = login(user).get(reverse("conversations:attachment", args=[att.pk]))
    assert resp.status_code == status
    assert b"%PDF" not in resp.content and "attachment" not in resp.get("Content-Disposition", "")
    assert AuditLog.objects.count() == audit_before and Attachment.objects.filter(pk=att.pk).exists()


def test_anonymous_visitors_are_sent_to_sign_in(attachments, client):
    resp = client.get(reverse("conversations:attachment", args=[attachments["发票.pdf"].pk]))
    assert resp.status_code == 302 and "/login/" in resp["Location"]
