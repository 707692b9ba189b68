"""Email replies over real SMTP (a local aiosmtpd server): headers, threading, errors, settings."""

from __future__ import annotations

import email
import socket
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from ecrm.conversations.channels import DeliveryError, get_adapter
from ecrm.conversations.channels.email.inbound import ingest_raw_email
from ecrm.conversations.models import Conversation, DeliveryStatus, Inbox, Message
from ecrm.conversations.services import IncomingAttachment, create_inbox, do_send_reply
from ecrm.core.exceptions import ValidationFailed
from ecrm.core.models import Team

FIXTURES = Path(__file__).parent / "fixtures" / "mail"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """aiosmtpd handler: keeps what it receives; `refuse` makes RCPT answer with that reply."""

    def __init__(self):
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refuse: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(settings):
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield sink
    controller.stop()


@pytest.fixture
def inbox(cast):
    return create_inbox(
        actor=cast["admin"],
        name="Support CN",
        kind="email",
        team=Team.objects.get(name="Service CN"),
        config={"from_address": "support@shop.example", "from_name": "Shop 客服"},
    )


def _reply(conv, actor, text, django_capture_on_commit_callbacks, **kw) -> Message:
    with django_capture_on_commit_callbacks(execute=True):
        message = do_send_reply(conversation=conv, actor=actor, body_text=text, **kw)
    message.refresh_from_db()
    return message


def test_a_reply_goes_out_over_smtp_threaded_to_the_customers_mail(
    smtp, inbox, cast, django_capture_on_commit_callbacks
):
    first = ingest_raw_email(inbox=inbox, raw=(FIXTURES / "gbk_chinese.eml").read_bytes()).result
    conv = first.conversation
    reply = _reply(conv, cast["agent_li"], "您好，您的包裹明天送到。", django_capture_on_commit_callbacks)

    assert reply.status == DeliveryStatus.SENT and reply.error == ""
    assert len(smtp.received) == 1
    mail_from, rcpts, data = smtp.received[0]
    assert (mail_from, rcpts) == ("support@shop.example", ["zhang.wei@example.cn"])
    sent = email.message_from_bytes(data, policy=policy.default)
    assert sent["Subject"] == f"Re: 关于订单的问题 朱镕 [#{conv.pk}]"
    assert sent["In-Reply-To"] == "<gbk-0001@mail.example.cn>"
    assert sent["References"] == "<gbk-0001@mail.example.cn>"
    assert sent["To"] == "zhang.wei@example.cn"
    assert sent["From"].addresses[0].display_name == "Shop 客服"
    assert sent["Auto-Submitted"] is None  # a person wrote it: auto-responders may answer
    assert sent["Message-ID"] == reply.external_id and reply.external_id.endswith("@shop.example>")
    assert sent.get_body(("plain",)).get_content().strip() == "您好，您的包裹明天送到。"

    # The customer answers our reply: it threads by In-Reply-To to the same conversation.
    answer = (
        f"From: Zhang Wei <zhang.wei@example.cn>\r\nTo: support@shop.example\r\n"
        f"Subject: {sent['Subject']}\r\nMessage-ID: <gbk-0002@mail.example.cn>\r\n"
        f"In-Reply-To: {reply.external_id}\r\n\r\nThanks!\r\n"
    ).encode()
    second = ingest_raw_email(inbox=inbox, raw=answer).result
    assert second.conversation.pk == conv.pk and not second.created_conversation
    assert Conversation.objects.count() == 1

    # The next reply carries the whole chain in References.
    _reply(conv, cast["agent_li"], "不客气", django_capture_on_commit_callbacks)
    again = email.message_from_bytes(smtp.received[1][2], policy=policy.default)
    assert again["In-Reply-To"] == "<gbk-0002@mail.example.cn>"
    assert again["References"].split() == [reply.external_id, "<gbk-0002@mail.example.cn>"]
    assert again["Subject"] == f"Re: 关于订单的问题 朱镕 [#{conv.pk}]"  # no "Re: Re:", one reference


def test_a_reply_goes_to_reply_to_and_carries_attachments(
    smtp, inbox, cast, django_capture_on_commit_callbacks
):
    conv = ingest_raw_email(inbox=inbox, raw=(FIXTURES / "multipart_attachments.eml").read_bytes()).result
    pdf = b"%PDF-1.4\n% our label\n"
    _reply(
        conv.conversation, cast["manager"], "Here is the return label.", django_capture_on_commit_callbacks,
        attachments=[IncomingAttachment("label.pdf", "application/pdf", pdf)],
    )  # fmt: skip
    _, rcpts, data = smtp.received[0]
    assert rcpts == ["orders-li@example.com"]  # Reply-To, while the customer is matched by From
    sent = email.message_from_bytes(data, policy=policy.default)
    files = [(p.get_filename(), p.get_content_type(), p.get_content()) for p in sent.iter_attachments()]
    assert files == [("label.pdf", "application/pdf", pdf)]


def test_a_permanent_smtp_refusal_fails_the_message_without_retry(
    smtp, inbox, cast, django_capture_on_commit_callbacks
):
    conv = ingest_raw_email(inbox=inbox, raw=(FIXTURES / "html_only.eml").read_bytes()).result.conversation
    smtp.refuse = "550 5.1.1 User unknown"
    reply = _reply(conv, cast["agent_li"], "Hello", django_capture_on_commit_callbacks)
    assert reply.status == DeliveryStatus.FAILED
    assert "550" in reply.error and "User unknown" in reply.error
    assert smtp.received == []


def test_temporary_smtp_errors_and_a_dead_server_are_retryable(smtp, inbox, cast, settings):
    conv = ingest_raw_email(inbox=inbox, raw=(FIXTURES / "html_only.eml").read_bytes()).result.conversation
    message = do_send_reply(conversation=conv, actor=cast["agent_li"], body_text="Hi")  # not delivered yet
    adapter = get_adapter("email")
    smtp.refuse = "451 4.3.0 Try again later"
    with pytest.raises(DeliveryError) as exc:
        adapter.send(message)
    assert exc.value.permanent is False and "451" in str(exc.value)
    settings.EMAIL_PORT = _free_port()  # nothing listens there
    with pytest.raises(DeliveryError) as exc:
        adapter.send(message)
    assert exc.value.permanent is False and "unreachable" in str(exc.value)
    message.refresh_from_db()
    assert message.status == DeliveryStatus.QUEUED and smtp.received == []


def test_an_inbox_smtp_override_is_used_instead_of_the_site_backend(smtp, cast, settings):
    port = settings.EMAIL_PORT
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    inbox = create_inbox(
        actor=cast["admin"], name="Own server", kind="email", team=None,
        config={"from_address": "help@other.example",
                "smtp": {"host": "127.0.0.1", "port": port, "use_tls": False, "timeout": 5}},
    )  # fmt: skip
    raw = b"From: a@example.com\r\nSubject: hi\r\nMessage-ID: <o1@example.com>\r\n\r\nhello\r\n"
    conv = ingest_raw_email(inbox=inbox, raw=raw).result.conversation
    message = do_send_reply(conversation=conv, actor=cast["admin"], body_text="Hello back")
    meta = get_adapter("email").send(message)
    assert len(smtp.received) == 1 and smtp.received[0][0] == "help@other.example"
    assert meta["external_id"].endswith("@other.example>")


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "config.from_address"),
        ({"from_address": "not an address"}, "config.from_address"),
        ({"from_address": "a@b.example", "smtp": {"host": "", "port": 25}}, "config.smtp.host"),
        ({"from_address": "a@b.example", "smtp": {"host": "h", "use_tls": True, "use_ssl": True}}, "config.smtp"),
        ({"from_address": "a@b.example", "imap": {"host": "h", "username": "u", "poll_seconds": 1}},
         "config.imap.poll_seconds"),
        ({"from_address": "a@b.example", "unknown": 1}, "config.unknown"),
    ],
)  # fmt: skip
def test_bad_inbox_settings_are_refused_field_by_field(cast, config, field):
    with pytest.raises(ValidationFailed) as exc:
        create_inbox(actor=cast["admin"], name="Bad", kind="email", team=None, config=config)
    assert field in exc.value.fields
    assert not Inbox.objects.exists()


def test_a_reply_answers_the_customers_own_mail_not_the_out_of_office_after_it(
    smtp, inbox, cast, django_capture_on_commit_callbacks
):
    conv = ingest_raw_email(inbox=inbox, raw=(FIXTURES / "gbk_chinese.eml").read_bytes()).result.conversation
    ingest_raw_email(inbox=inbox, raw=(FIXTURES / "autoreply.eml").read_bytes().replace(
        b"In-Reply-To: <reply-0001@shop.example>", b"In-Reply-To: <gbk-0001@mail.example.cn>"))  # fmt: skip
    assert conv.messages.count() == 2
    _reply(conv, cast["agent_li"], "Hello", django_capture_on_commit_callbacks)
    sent = email.message_from_bytes(smtp.received[0][2], policy=policy.default)
    assert sent["In-Reply-To"] == "<gbk-0001@mail.example.cn>"


def test_a_reply_to_a_mail_system_address_is_refused_not_sent(
    smtp, inbox, cast, django_capture_on_commit_callbacks
):
    conv = ingest_raw_email(inbox=inbox, raw=(FIXTURES / "bounce.eml").read_bytes()).result.conversation
    reply = _reply(conv, cast["manager"], "Hello?", django_capture_on_commit_callbacks)
    assert reply.status == DeliveryStatus.FAILED and "mail system address" in reply.error
    assert smtp.received == []
