"""`parse.py` on its own: header decoding, names, dates, nested and forwarded mail (no database)."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from ecrm.conversations.channels.email.parse import decode_bytes, decode_header_value, parse_email, split_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("=?GB2312?B?" + base64.b64encode("退货申请".encode("gbk")).decode() + "?=", "退货申请"),
        ("=?gbk?Q?=B6=A9=B5=A5?= A1001", "订单 A1001"),
        ("=?GB18030?B?" + base64.b64encode("朱镕基".encode("gb18030")).decode() + "?=", "朱镕基"),
        ("=?utf-8?B?" + base64.b64encode("你好".encode()).decode() + "?= =?utf-8?Q?_world?=", "你好 world"),
        ("=?x-unknown?Q?caf=C3=A9?=", "café"),  # unknown charset: UTF-8 fallback
        ("plain\r\n folded", "plain folded"),
        ("=?utf-8?B?not base64!!?=", "=?utf-8?B?not base64!!?="),  # kept as written, no crash
    ],
)
def test_headers_in_any_charset_decode(raw, expected):
    assert decode_header_value(raw) == expected


def test_raw_8bit_headers_are_detected():
    value = "订单".encode("gbk").decode("ascii", "surrogateescape")
    assert decode_header_value(value) == "订单"
    value = "订单".encode().decode("ascii", "surrogateescape")
    assert decode_header_value(value) == "订单"


def test_bytes_that_fit_no_charset_come_back_as_latin_1_with_a_defect():
    defects: list[str] = []
    assert decode_bytes(b"\xff\xfe\x81", "bogus", defects) == "ÿþ\x81"
    assert defects == ["unknown charset 'bogus'", "undecodable text in charset bogus; decoded as latin-1"]


@pytest.mark.parametrize(
    ("name", "traits"),
    [
        ("张伟", {"last_name": "张", "first_name": "伟"}),
        ("欧阳 娜娜", {"last_name": "欧阳", "first_name": "娜娜"}),
        ("Ann Marie Lee", {"first_name": "Ann Marie", "last_name": "Lee"}),
        ("Lee, Ann", {"first_name": "Ann", "last_name": "Lee"}),
        ("Support", {"first_name": "Support"}),
        ("ann@example.com", {}),
        ("", {}),
    ],
)
def test_display_names_become_first_and_last_names(name, traits):
    assert split_name(name) == traits


def test_dates_reply_to_and_references():
    raw = (
        b"From: Ann <ann@example.com>\r\nReply-To: ANN@example.com\r\nDate: 24 Nov 2026 10:00:00\r\n"
        b"In-Reply-To: <b@x>\r\nReferences: <a@x>\r\n <b@x>\r\nSubject: Re: [#77] hi\r\n\r\nbody\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.sent_at == dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)  # no zone: read as UTC
    assert parsed.reply_to == ""  # the same address as From: nothing to remember
    assert parsed.thread_references == ["<a@x>", "<b@x>"] and parsed.subject_ref == 77
    bad = parse_email(b"From: a@example.com\r\nDate: yesterday-ish\r\n\r\nx")
    assert bad.sent_at is None and "unreadable Date header" in bad.defects


def test_a_forwarded_message_is_kept_as_an_eml_attachment():
    inner = b"From: shop@example.com\r\nSubject: Your order\r\nMessage-ID: <inner@x>\r\n\r\nShipped.\r\n"
    raw = (
        b'From: fwd@example.com\r\nSubject: Fwd: Your order\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="F"\r\n\r\n'
        b"--F\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--F\r\nContent-Type: message/rfc822\r\n\r\n"
        + inner
        + b"\r\n--F--\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.body_text == "See below."  # the forwarded text is not mixed into the body
    [att] = parsed.attachments
    assert (att.filename, att.content_type) == ("attachment-1.eml", "message/rfc822")
    assert b"Message-ID: <inner@x>" in att.content and b"Shipped." in att.content


def test_a_gbk_encoded_attachment_name_is_decoded():
    name = "=?GBK?B?" + base64.b64encode("发票.pdf".encode("gbk")).decode() + "?="
    raw = (
        'From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="M"\r\n\r\n'
        "--M\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--M\r\nContent-Type: application/pdf\r\n"
        f'Content-Disposition: attachment; filename="{name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        "JVBERi0xLjQK\r\n--M--\r\n"
    ).encode()
    [att] = parse_email(raw).attachments
    assert (att.filename, att.content) == ("发票.pdf", b"%PDF-1.4\n")


def test_absurdly_deep_nesting_is_cut_off_without_crashing():
    raw = b"From: a@example.com\r\nMIME-Version: 1.0\r\n"
    body = b"innermost text\r\n"
    for depth in range(30):
        b = f"B{depth}".encode()
        body = (
            b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n--' + b + b"\r\n"
            + (body if body.startswith(b"Content-Type") else b"Content-Type: text/plain\r\n\r\n" + body)
            + b"\r\n--" + b + b"--\r\n"
        )  # fmt: skip
    parsed = parse_email(raw + body)
    assert "MIME nesting too deep; inner parts skipped" in parsed.defects
    assert parsed.body_text == "(no text)"  # still a message from this person, stored
