"""Inbound mail through `ingest_raw_email` (the function all three paths call): Chinese mail, hostile
HTML, loops, bounces, malformed MIME, big attachments, customers and threading."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecrm.conversations.channels.email.inbound import MessageTooLarge, ingest_raw_email
from ecrm.conversations.models import Conversation, DeliveryStatus, Inbox, Message, MessageDirection
from ecrm.conversations.services import create_inbox
from ecrm.core.exceptions import ValidationFailed
from ecrm.core.models import Team
from ecrm.customers.models import Customer, Identity

FIXTURES = Path(__file__).parent / "fixtures" / "mail"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def mail(
    *, sender="Ann Lee <ann@example.com>", subject="Order question", msgid="<m1@example.com>", body="Hello",
    headers: dict[str, str] | None = None,
) -> bytes:  # fmt: skip
    lines = [f"From: {sender}", "To: support@shop.example", f"Subject: {subject}", f"Message-ID: {msgid}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return (
        "\r\n".join(lines) + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n"
    ).encode()


@pytest.fixture
def inbox(cast):
    return create_inbox(
        actor=cast["admin"], name="Support", kind="email", team=Team.objects.get(name="Service CN"),
        config={"from_address": "support@shop.example"}, auto_assign=True,
    )  # fmt: skip


def test_a_gbk_message_with_an_encoded_word_subject_is_read_correctly(
    inbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = ingest_raw_email(inbox=inbox, raw=fixture("gbk_chinese.eml")).result
    result.conversation.refresh_from_db()
    msg = result.message
    # gb2312 declared, but 镕 exists only in GBK: decoded as gb18030 (the superset), nothing garbled
    assert result.conversation.subject == "关于订单的问题 朱镕"
    assert msg.body_text == "您好，\n我的订单 A1001 还没有到，请帮忙查一下。朱镕基\n谢谢！"
    assert msg.external_id == "<gbk-0001@mail.example.cn>" and msg.sender == "zhang.wei@example.cn"
    assert "parse_defects" not in msg.metadata
    customer = result.conversation.customer
    assert (customer.last_name, customer.first_name, customer.email) == ("张", "伟", "zhang.wei@example.cn")
    assert result.created_customer and result.conversation.assignee is not None  # round-robin ran


def test_html_only_mail_is_sanitised_and_gets_a_text_version(inbox):
    msg = ingest_raw_email(inbox=inbox, raw=fixture("html_only.eml")).result.message
    assert "<script" not in msg.body_html and "steal" not in msg.body_html and "fetch(" not in msg.body_html
    assert "onclick" not in msg.body_html and "onerror" not in msg.body_html and "<style" not in msg.body_html
    # the remote image is kept as data: the agent's view loads it only on a click
    assert 'src="https://tracker.example/pixel.gif?u=42"' in msg.body_html
    assert msg.body_text == "Hello team,\n\nMy parcel is damaged."


def test_an_auto_reply_is_stored_on_the_thread_but_never_assigned_or_answered(inbox, cast):
    first = ingest_raw_email(inbox=inbox, raw=fixture("gbk_chinese.eml")).result
    Message.objects.create(
        conversation=first.conversation, inbox=inbox, direction=MessageDirection.OUTBOUND, author=cast["agent_li"],
        body_text="reply", external_id="<reply-0001@shop.example>", status=DeliveryStatus.SENT,
        created_at=first.message.created_at,
    )  # fmt: skip
    outcome = ingest_raw_email(inbox=inbox, raw=fixture("autoreply.eml"))
    assert outcome.auto == "autoreply"
    assert outcome.result.conversation.pk == first.conversation.pk  # threaded by In-Reply-To
    assert outcome.result.message.metadata["auto"] == "autoreply"
    assert outcome.result.message.metadata["auto_reason"] == "Auto-Submitted: auto-replied"
    assert Message.objects.filter(direction=MessageDirection.OUTBOUND).count() == 1  # nothing sent back


def test_an_out_of_office_that_starts_a_thread_is_not_handed_to_an_agent(
    inbox, django_capture_on_commit_callbacks
):
    raw = mail(subject="Out of Office: back on Monday", msgid="<ooo@example.com>")
    with django_capture_on_commit_callbacks(execute=True):
        outcome = ingest_raw_email(inbox=inbox, raw=raw)
    conv = Conversation.objects.get(pk=outcome.result.conversation.pk)
    assert outcome.auto == "autoreply" and conv.assignee is None
    # ...while a person's mail on the same auto-assigning inbox is assigned
    with django_capture_on_commit_callbacks(execute=True):
        person = ingest_raw_email(
            inbox=inbox, raw=mail(msgid="<p@example.com>", sender="x@example.com")
        ).result
    assert Conversation.objects.get(pk=person.conversation.pk).assignee is not None


@pytest.mark.parametrize(
    ("headers", "subject", "reason"),
    [
        ({"Precedence": "bulk"}, "Newsletter", "Precedence: bulk"),
        ({"X-Autorespond": "yes"}, "Thanks", "x-autorespond header"),
        ({"List-Id": "<deals.shop.example>"}, "Deals", "List-Id header (mailing list)"),
        ({}, "自动回复：我正在休假", "out-of-office subject"),
        ({"Auto-Submitted": "no"}, "A person wrote this", None),
    ],
)
def test_loop_rules(inbox, headers, subject, reason):
    outcome = ingest_raw_email(inbox=inbox, raw=mail(subject=subject, headers=headers))
    assert outcome.result.message.metadata.get("auto_reason") == reason
    assert outcome.auto == ("autoreply" if reason else None)


def test_a_bounce_lands_on_the_thread_and_marks_the_bounced_reply_failed(inbox, cast):
    first = ingest_raw_email(inbox=inbox, raw=mail(sender="nobody@example.cn")).result
    reply = Message.objects.create(
        conversation=first.conversation, inbox=inbox, direction=MessageDirection.OUTBOUND, author=cast["agent_li"],
        body_text="reply", external_id="<reply-0002@shop.example>", status=DeliveryStatus.SENT,
        created_at=first.message.created_at,
    )  # fmt: skip
    customers_before = Customer.objects.count()
    outcome = ingest_raw_email(inbox=inbox, raw=fixture("bounce.eml"))
    assert outcome.auto == "bounce" and outcome.bounced_message_id == reply.pk
    assert outcome.result.conversation.pk == first.conversation.pk
    assert Customer.objects.count() == customers_before  # no customer called MAILER-DAEMON
    reply.refresh_from_db()
    assert reply.status == DeliveryStatus.FAILED
    assert (
        reply.error
        == "Bounced: smtp; 550 5.1.1 <nobody@example.cn>: Recipient address rejected: User unknown"
    )
    assert outcome.result.message.metadata["auto"] == "bounce"


def test_a_bounce_for_an_unknown_message_is_still_stored(inbox):
    outcome = ingest_raw_email(inbox=inbox, raw=fixture("bounce.eml"))
    assert outcome.auto == "bounce" and outcome.bounced_message_id is None
    conv = Conversation.objects.get(pk=outcome.result.conversation.pk)
    assert conv.assignee is None and "could not be delivered" in outcome.result.message.body_text


def test_malformed_mime_keeps_what_can_be_read_and_records_the_defects(inbox):
    msg = ingest_raw_email(inbox=inbox, raw=fixture("malformed.eml")).result.message
    assert msg.body_text == "The first part can be read."
    assert msg.external_id == "<broken-0001@example.org>"
    defects = msg.metadata["parse_defects"]
    assert "a header line without a colon was dropped" in defects
    assert "CloseBoundaryNotFoundDefect" in defects and "InvalidBase64LengthDefect" in defects
    # what the parser could not read is still there: the original is kept beside the text
    files = {a.filename: a for a in msg.attachments.all()}
    assert sorted(files) == ["invoice.pdf", "original-message.eml"]
    with files["original-message.eml"].file.open("rb") as fh:
        assert fh.read() == fixture("malformed.eml")


def test_an_unknown_charset_falls_back_without_losing_the_text(inbox):
    result = ingest_raw_email(inbox=inbox, raw=fixture("unknown_charset.eml")).result
    assert result.conversation.subject == "Café order"
    assert result.message.body_text == "Café order: two crème brûlée, 你好."
    assert result.message.metadata["parse_defects"] == ["unknown charset 'x-unknown'"]
    assert [a.filename for a in result.message.attachments.all()] == ["original-message.eml"]


def test_gbk_bytes_with_no_charset_declared_are_detected(inbox):
    raw = b"From: w@example.cn\r\nSubject: \xb6\xa9\xb5\xa5\r\nMessage-ID: <g@x>\r\n\r\n" + "退货".encode(
        "gbk"
    )
    result = ingest_raw_email(inbox=inbox, raw=raw).result
    assert (result.conversation.subject, result.message.body_text) == ("订单", "退货")


def test_a_30_mb_attachment_is_refused_and_listed_while_the_mail_is_kept(inbox, settings):
    settings.ECRM_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
    big = b"%PDF-1.4\n" + b"0" * (30 * 1024 * 1024)
    import base64

    raw = (
        b"From: big@example.com\r\nSubject: scan\r\nMessage-ID: <big@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n'
        b"See the scan.\r\n--B\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="scan.pdf"\r\n\r\n'
        + base64.encodebytes(big) + b"\r\n--B--\r\n"
    )  # fmt: skip
    outcome = ingest_raw_email(inbox=inbox, raw=raw)
    msg = outcome.result.message
    assert msg.body_text == "See the scan." and msg.attachments.count() == 0
    assert outcome.refused_attachments == [
        {"filename": "scan.pdf", "size": len(big), "reason": "larger than the 25 MB limit"}
    ]


def test_attachments_are_stored_and_refused_ones_listed(inbox):
    msg = ingest_raw_email(inbox=inbox, raw=fixture("multipart_attachments.eml")).result.message
    stored = sorted(msg.attachments.values_list("filename", "content_type"))
    assert stored == [("photo.png", "image/png"), ("发票.pdf", "application/pdf")]
    assert [r["filename"] for r in msg.metadata["refused_attachments"]] == ["setup.exe"]
    assert msg.body_text == "See the photo and the invoice." and 'src="cid:photo1"' in msg.body_html
    assert msg.metadata["email"]["reply_to"] == "orders-li@example.com"
    customer = msg.conversation.customer
    assert (customer.first_name, customer.last_name) == ("Na", "Li")  # "Li, Na"


def test_mail_without_a_sender_is_rejected_and_nothing_is_stored(inbox):
    with pytest.raises(ValidationFailed, match="no sender address"):
        ingest_raw_email(inbox=inbox, raw=fixture("no_from.eml"))
    with pytest.raises(ValidationFailed, match="empty"):
        ingest_raw_email(inbox=inbox, raw=b"  \r\n")
    assert not Message.objects.exists() and not Customer.objects.exists()


def test_a_message_over_the_raw_size_limit_is_refused(inbox, settings):
    settings.ECRM_MAX_RAW_EMAIL_BYTES = 100
    with pytest.raises(MessageTooLarge):
        ingest_raw_email(inbox=inbox, raw=mail(body="x" * 200))
    assert not Message.objects.exists()


def test_a_sender_on_no_customer_gets_a_new_customer_and_a_known_one_is_matched(inbox):
    known = Customer.objects.create(display_name="Ann", email="ann@example.com")
    Identity.objects.create(customer=known, kind="email", value="ann@example.com")
    a = ingest_raw_email(inbox=inbox, raw=mail(sender="ANN <Ann@Example.com>", msgid="<a@x>")).result
    b = ingest_raw_email(inbox=inbox, raw=mail(sender="Bo Chen <bo@example.com>", msgid="<b@x>")).result
    assert a.conversation.customer == known and not a.created_customer
    assert (
        b.created_customer
        and Identity.objects.get(value="bo@example.com").customer == b.conversation.customer
    )
    assert (b.conversation.customer.first_name, b.conversation.customer.last_name) == ("Bo", "Chen")


def test_a_duplicate_message_id_is_stored_once(inbox):
    first = ingest_raw_email(inbox=inbox, raw=mail())
    again = ingest_raw_email(inbox=inbox, raw=mail())
    assert again.result.duplicate and again.result.message.pk == first.result.message.pk
    assert Message.objects.count() == 1 and Conversation.objects.get().unread == 1


def test_a_message_without_message_id_is_deduplicated_by_its_content(inbox):
    raw = b"From: n@example.com\r\nSubject: no id\r\n\r\nbody\r\n"
    first = ingest_raw_email(inbox=inbox, raw=raw)
    again = ingest_raw_email(inbox=inbox, raw=raw)
    assert again.result.duplicate and Message.objects.count() == 1
    assert first.result.message.external_id.startswith("<sha256.")
    assert not first.result.message.attachments.exists()  # nothing unreadable: no copy of the original


def test_threading_by_in_reply_to_by_references_only_and_by_subject_reference(inbox):
    first = ingest_raw_email(inbox=inbox, raw=mail(msgid="<t1@example.com>")).result
    conv = first.conversation
    by_irt = ingest_raw_email(
        inbox=inbox, raw=mail(msgid="<t2@example.com>", headers={"In-Reply-To": "<t1@example.com>"})
    ).result
    by_refs = ingest_raw_email(
        inbox=inbox,
        raw=mail(msgid="<t3@example.com>", headers={"References": "<zzz@elsewhere> <t2@example.com>"}),
    ).result
    by_subject = ingest_raw_email(
        inbox=inbox, raw=mail(msgid="<t4@example.com>", subject=f"Re: Order question [#{conv.pk}]")
    ).result
    assert {by_irt.conversation.pk, by_refs.conversation.pk, by_subject.conversation.pk} == {conv.pk}
    assert Conversation.objects.count() == 1 and conv.messages.count() == 4


def test_a_guessed_subject_reference_never_attaches_mail_to_someone_elses_thread(inbox, cast):
    victim = ingest_raw_email(inbox=inbox, raw=mail(sender="victim@example.com", msgid="<v@x>")).result
    other_inbox = create_inbox(actor=cast["admin"], name="Other", kind="email", team=None,
                               config={"from_address": "other@shop.example"})  # fmt: skip
    attacker = ingest_raw_email(
        inbox=inbox,
        raw=mail(sender="attacker@example.com", msgid="<e1@x>", subject=f"Re: [#{victim.conversation.pk}]"),
    ).result
    same_sender_other_inbox = ingest_raw_email(
        inbox=other_inbox,
        raw=mail(sender="victim@example.com", msgid="<e2@x>", subject=f"Re: [#{victim.conversation.pk}]"),
    ).result
    assert attacker.created_conversation and attacker.conversation.pk != victim.conversation.pk
    assert same_sender_other_inbox.created_conversation
    assert Message.objects.filter(conversation=victim.conversation).count() == 1


def test_a_non_email_inbox_is_refused(cast):
    chat = Inbox.objects.create(name="Chat", kind="chat")
    with pytest.raises(ValidationFailed, match="not an email inbox"):
        ingest_raw_email(inbox=chat, raw=mail())
    assert not Message.objects.exists()


def test_mail_from_the_inboxs_own_address_is_treated_as_automatic(inbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        outcome = ingest_raw_email(inbox=inbox, raw=mail(sender="Support <SUPPORT@shop.example>"))
    assert outcome.auto == "autoreply"
    assert outcome.result.message.metadata["auto_reason"] == "sent from this inbox's own address"
    assert Conversation.objects.get().assignee is None


def test_an_out_of_office_does_not_reopen_a_resolved_conversation_but_the_customer_does(inbox):
    first = ingest_raw_email(inbox=inbox, raw=mail(msgid="<r1@example.com>")).result
    Conversation.objects.filter(pk=first.conversation.pk).update(status="resolved")
    ooo = ingest_raw_email(
        inbox=inbox,
        raw=mail(msgid="<r2@example.com>", subject="Automatic reply: Order question",
                 headers={"In-Reply-To": "<r1@example.com>"}),
    )  # fmt: skip
    assert ooo.auto == "autoreply" and ooo.result.conversation.pk == first.conversation.pk
    assert Conversation.objects.get().status == "resolved" and ooo.result.conversation.status == "resolved"
    person = ingest_raw_email(
        inbox=inbox, raw=mail(msgid="<r3@example.com>", headers={"In-Reply-To": "<r1@example.com>"})
    )
    assert person.auto is None and Conversation.objects.get().status == "open"
    assert Message.objects.count() == 3


def test_a_bounce_reopens_the_conversation_because_the_answer_did_not_arrive(inbox, cast):
    first = ingest_raw_email(inbox=inbox, raw=mail(sender="nobody@example.cn")).result
    Message.objects.create(
        conversation=first.conversation, inbox=inbox, direction=MessageDirection.OUTBOUND, author=cast["agent_li"],
        body_text="reply", external_id="<reply-0002@shop.example>", status=DeliveryStatus.SENT,
        created_at=first.message.created_at,
    )  # fmt: skip
    Conversation.objects.filter(pk=first.conversation.pk).update(status="resolved")
    ingest_raw_email(inbox=inbox, raw=fixture("bounce.eml"))
    assert Conversation.objects.get().status == "open"
