"""The MTA pipe (`manage.py ingest_email`) and the HTTP endpoint for raw MIME: outcomes, exit codes,
status codes, authentication and limits."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from ecrm.conversations.models import Conversation, Inbox, Message
from ecrm.conversations.services import create_inbox
from ecrm.customers.models import Customer

FIXTURES = Path(__file__).parent / "fixtures" / "mail"
ROOT = Path(__file__).resolve().parents[3]
RAW = b"From: Ann Lee <ann@example.com>\r\nSubject: Hi\r\nMessage-ID: <p1@example.com>\r\n\r\nHello\r\n"


@pytest.fixture
def inbox(cast):
    return create_inbox(actor=cast["admin"], name="Support", kind="email", team=None,
                        config={"from_address": "support@shop.example"})  # fmt: skip


def run_command(inbox_id: int, raw: bytes) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    from ecrm.conversations.management.commands.ingest_email import Command

    cmd = Command(stdout=out, stderr=err)
    code = cmd.ingest(inbox_id, io.BytesIO(raw))
    return code, out.getvalue().strip(), err.getvalue().strip()


def test_the_pipe_stores_a_message_and_reports_a_duplicate(inbox):
    code, out, err = run_command(inbox.pk, (FIXTURES / "gbk_chinese.eml").read_bytes())
    msg = Message.objects.get()
    assert (code, err) == (0, "")
    assert out == f"stored message {msg.pk} in conversation {msg.conversation_id}"
    code, out, _ = run_command(inbox.pk, (FIXTURES / "gbk_chinese.eml").read_bytes())
    assert (code, out) == (0, f"duplicate: already stored as message {msg.pk}")
    assert Message.objects.count() == 1


def test_the_pipe_rejects_unusable_input_with_ex_dataerr(inbox):
    code, out, err = run_command(inbox.pk, (FIXTURES / "no_from.eml").read_bytes())
    assert (code, out) == (65, "")
    assert err == "rejected: The message has no sender address (From header), so it cannot be answered."
    code, _, err = run_command(inbox.pk, b"")
    assert (code, err) == (65, "rejected: The message is empty.")
    code, _, err = run_command(inbox.pk + 99, RAW)
    assert (code, err) == (67, f"no active email inbox with id {inbox.pk + 99}")
    assert not Message.objects.exists() and not Customer.objects.exists()


def test_the_pipe_reports_refused_attachments_and_auto_mail(inbox):
    _, out, _ = run_command(inbox.pk, (FIXTURES / "multipart_attachments.eml").read_bytes())
    assert out.endswith("; refused attachments: setup.exe")
    _, out, _ = run_command(inbox.pk, (FIXTURES / "bounce.eml").read_bytes())
    assert out.endswith(" (bounce)")


def test_the_command_reads_standard_input_and_exits_with_the_code(inbox, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((FIXTURES / "no_from.eml").read_bytes())))
    with pytest.raises(SystemExit) as exc:
        call_command("ingest_email", "--inbox", str(inbox.pk))
    assert exc.value.code == 65
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(RAW)))
    out = io.StringIO()
    call_command("ingest_email", "--inbox", str(inbox.pk), stdout=out)  # 0: no SystemExit
    assert out.getvalue().startswith("stored message ") and Message.objects.count() == 1


@pytest.mark.slow
def test_the_command_works_as_a_real_pipe(tmp_path):
    """What Postfix does: a separate process, the message on stdin, the exit status read back."""
    env = {"DJANGO_SETTINGS_MODULE": "config.settings.test", "SQLITE_PATH": str(tmp_path / "pipe.sqlite3"),
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    setup = (
        "import django;django.setup();from ecrm.conversations.models import Inbox;"
        "print(Inbox.objects.create(name='m',kind='email',config={'from_address':'s@shop.example'}).pk)"
    )
    inbox_id = subprocess.run([py, "-c", setup], cwd=ROOT, env=env, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
    cmd = [py, "manage.py", "ingest_email", "--inbox", inbox_id]
    ok = subprocess.run(cmd, cwd=ROOT, env=env, input=RAW, capture_output=True, timeout=120)
    bad = subprocess.run(cmd, cwd=ROOT, env=env, input=(FIXTURES / "no_from.eml").read_bytes(),
                         capture_output=True, timeout=120)  # fmt: skip
    assert ok.returncode == 0 and ok.stdout.startswith(b"stored message 1 in conversation 1")
    assert bad.returncode == 65 and b"no sender address" in bad.stderr


URL = "/api/v1/conversations/email/inbound/{}"


def test_the_endpoint_stores_raw_mime_and_answers_200_for_a_duplicate(inbox, api):
    raw = (FIXTURES / "multipart_attachments.eml").read_bytes()
    resp = api.post(URL.format(inbox.pk), raw=raw, content_type="message/rfc822")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    conv = Conversation.objects.get()
    assert body == {
        "conversation": conv.pk, "message": conv.messages.get().pk, "duplicate": False,
        "created_conversation": True, "created_customer": True, "auto": None,
        "refused_attachments": [{"filename": "setup.exe", "size": 12,
                                 "reason": "file type application/x-msdownload is not accepted"}],
    }  # fmt: skip
    again = api.post(URL.format(inbox.pk), raw=raw, content_type="message/rfc822")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert Message.objects.count() == 1


def test_the_endpoint_refuses_without_a_write_key_and_stores_nothing(inbox, api_read, api_anon, login):
    assert api_anon.post(URL.format(inbox.pk), raw=RAW, content_type="message/rfc822").status_code == 401
    resp = api_read.post(URL.format(inbox.pk), raw=RAW, content_type="message/rfc822")
    assert resp.status_code == 403 and resp.json()["code"] == "read_only_key"
    # a signed-in console admin is not an integration: session auth is not accepted here
    client = login("admin")
    assert client.post(URL.format(inbox.pk), data=RAW, content_type="message/rfc822").status_code == 401
    assert not Message.objects.exists() and not Customer.objects.exists()


def test_the_endpoint_gives_clear_errors_for_bad_input(inbox, api, settings, cast):
    resp = api.post(
        URL.format(inbox.pk), raw=(FIXTURES / "no_from.eml").read_bytes(), content_type="message/rfc822"
    )
    assert resp.status_code == 422 and resp.json()["fields"] == {"from": "required"}
    resp = api.post(URL.format(inbox.pk), data={"raw": "x"})
    assert resp.status_code == 415 and resp.json()["code"] == "unsupported_media_type"
    assert api.post(URL.format(9999), raw=RAW, content_type="message/rfc822").status_code == 404
    chat = Inbox.objects.create(name="Chat", kind="chat")
    assert api.post(URL.format(chat.pk), raw=RAW, content_type="message/rfc822").status_code == 404
    settings.ECRM_MAX_RAW_EMAIL_BYTES = 50
    resp = api.post(URL.format(inbox.pk), raw=RAW, content_type="message/rfc822")
    assert resp.status_code == 413 and resp.json()["code"] == "too_large"
    assert not Message.objects.exists()


def test_the_endpoint_accepts_mail_larger_than_the_form_upload_limit(inbox, api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024  # Django's cap on request.body; raw mail is read as a stream
    raw = RAW.replace(b"Hello", b"Hello " + b"x" * 5000)
    resp = api.post(URL.format(inbox.pk), raw=raw, content_type="message/rfc822")
    assert resp.status_code == 201 and len(Message.objects.get().body_text) == 5006


def test_the_pipe_asks_the_mta_to_retry_when_the_database_is_down(inbox, monkeypatch):
    from django.db import OperationalError

    from ecrm.conversations.management.commands import ingest_email

    def down(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(ingest_email, "ingest_raw_email", down)
    code, out, err = run_command(inbox.pk, RAW)
    assert (code, out, err) == (75, "", "temporary failure: could not connect to server")
    assert not Message.objects.exists()


def test_an_unexpected_error_is_a_temporary_failure_so_the_mta_keeps_the_mail(inbox, monkeypatch):
    from ecrm.conversations.management.commands import ingest_email

    def broken(**kwargs):
        raise KeyError("bug")

    monkeypatch.setattr(ingest_email, "ingest_raw_email", broken)
    code, out, err = run_command(inbox.pk, RAW)
    assert (code, out, err) == (75, "", "temporary failure: internal error (KeyError)")
