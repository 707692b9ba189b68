"""Web forms: the console builder, the public form the shop embeds, spam protection, submissions."""

from __future__ import annotations

import time

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from ecrm.conversations.channels.webform import antispam
from ecrm.conversations.channels.webform import services as webform_services
from ecrm.conversations.channels.webform.services import clean_field_definitions, do_save_webform
from ecrm.conversations.models import Conversation, Message, WebForm
from ecrm.conversations.services import create_inbox, do_send_reply
from ecrm.core.exceptions import PermissionDenied, ValidationFailed
from ecrm.core.models import Team
from ecrm.customers.models import Customer, Identity
from ecrm.customers.timeline import build_timeline

FIELDS = [
    {"name": "name", "label": "Your name", "type": "text", "required": True},
    {"name": "email", "label": "Email", "type": "email"},
    {"name": "phone", "label": "Phone", "type": "phone"},
    {"name": "topic", "label": "Topic", "type": "select", "options": ["Order", "Return"]},
    {"name": "message", "label": "Message", "type": "textarea", "required": True},
    {"name": "newsletter", "label": "Send me news", "type": "checkbox"},
]


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # rate-limit and spam counters live in the cache
    yield
    cache.clear()


@pytest.fixture
def form_inbox(cast):
    return create_inbox(
        actor=cast["admin"], name="Shop forms", kind="webform", team=Team.objects.get(name="Service CN"),
        config={"min_fill_seconds": 3, "rate_limit_per_hour": 5},
    )  # fmt: skip


@pytest.fixture
def contact_form(cast, form_inbox):
    return do_save_webform(
        actor=cast["manager"], inbox=form_inbox, name="Contact us", slug="contact", fields=FIELDS,
        success_message="Thanks, we answer within a day.",
    )  # fmt: skip


def post_form(form, data, *, age=10, client=None):
    client = client or Client(enforce_csrf_checks=True)
    token = antispam.issue_token("webform", form.pk, issued_at=time.time() - age)
    return client.post(reverse("connect:webform", args=[form.slug]), {**data, antispam.TOKEN_FIELD: token})


GOOD = {"name": "王小明", "email": "Xiaoming@Example.com", "phone": "138 0013 8000", "topic": "Return",
        "message": "The shoes are too small.\nCan I swap them?", "newsletter": "on"}  # fmt: skip


def test_a_submission_opens_a_conversation_on_the_customer_with_a_readable_body(contact_form, cast):
    response = post_form(contact_form, GOOD)
    assert response.status_code == 200
    assert "Thanks, we answer within a day." in response.content.decode()
    conv = Conversation.objects.get()
    customer = conv.customer
    assert (conv.channel, conv.subject, conv.team.name, conv.contact) == (
        "webform", "Contact us", "Service CN", "xiaoming@example.com",
    )  # fmt: skip
    assert set(Identity.objects.filter(customer=customer).values_list("kind", "value")) == {
        ("email", "xiaoming@example.com"), ("phone", "+8613800138000"),
    }  # fmt: skip
    assert customer.first_name == "王小明"
    message = Message.objects.get()
    assert message.body_text == (
        "Your name: 王小明\nEmail: Xiaoming@Example.com\nPhone: 138 0013 8000\nTopic: Return\n"
        "Message:\n  The shoes are too small.\n  Can I swap them?\nSend me news: yes"
    )
    assert message.body_html == ""
    assert message.metadata["webform"] == {"id": contact_form.pk, "slug": "contact", "name": "Contact us"}
    assert (
        message.metadata["fields"]["topic"] == "Return" and message.metadata["fields"]["newsletter"] is True
    )
    # on the customer's timeline, for an agent of the form's team
    entries = [e for e in build_timeline(customer, user=cast["agent_li"]).entries if e.kind == "message"]
    assert len(entries) == 1 and entries[0].body.startswith("Contact us — Your name: 王小明")


def test_a_known_customer_is_matched_by_the_email_field(contact_form):
    known = Customer.objects.create(display_name="Known", email="known@example.com")
    Identity.objects.create(customer=known, kind="email", value="known@example.com")
    post_form(contact_form, {**GOOD, "email": "KNOWN@example.com", "phone": ""})
    assert Conversation.objects.get().customer == known and Customer.objects.count() == 1


def test_an_empty_form_shows_field_errors_and_stores_nothing(contact_form):
    response = post_form(contact_form, {})
    body = response.content.decode()
    assert response.status_code == 422
    assert body.count("This field is required.") == 2  # name and message
    assert 'id="err-name"' in body and 'id="err-message"' in body
    assert 'aria-invalid="true" aria-describedby="err-name"' in body  # screen readers hear the error
    assert not Conversation.objects.exists() and not Customer.objects.exists()


def test_bad_values_are_reported_per_field_and_what_was_typed_is_kept(contact_form):
    data = {
        **GOOD,
        "email": "not-an-email",
        "phone": "12",
        "topic": "Bribe",
        "message": "<script>alert(1)</script>",
    }
    response = post_form(contact_form, data)
    body = response.content.decode()
    assert response.status_code == 422
    assert "Enter a valid email address." in body and "Enter a valid phone number." in body
    assert "Choose one of the options." in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert(1)" not in body
    assert not Conversation.objects.exists()


def test_a_form_with_neither_email_nor_phone_filled_asks_for_one(contact_form):
    response = post_form(contact_form, {**GOOD, "email": "", "phone": ""})
    assert response.status_code == 422
    assert response.content.decode().count("Give us an email address or a phone number") == 2
    assert not Conversation.objects.exists()


def test_html_in_a_submission_is_stored_as_plain_text_only(contact_form):
    post_form(contact_form, {**GOOD, "message": '<img src=x onerror="alert(1)"> hi'})
    message = Message.objects.get()
    assert message.body_html == "" and '  <img src=x onerror="alert(1)"> hi' in message.body_text


def test_a_filled_honeypot_looks_like_success_but_is_dropped_and_counted(contact_form, login):
    response = post_form(contact_form, {**GOOD, antispam.HONEYPOT_FIELD: "http://spam.example"})
    assert response.status_code == 200 and "Thanks, we answer within a day." in response.content.decode()
    assert not Conversation.objects.exists() and not Customer.objects.exists()
    assert antispam.spam_count("webform", contact_form.pk) == 1
    page = login("manager").get(reverse("conversations:webforms")).content.decode()
    assert "<td>1</td></tr>" in page


def test_a_post_faster_than_the_minimum_fill_time_is_refused_and_counted(contact_form):
    response = post_form(contact_form, GOOD, age=1)
    assert response.status_code == 400 and "That was very fast" in response.content.decode()
    assert "王小明" in response.content.decode()  # nothing typed is lost: the form comes back filled in
    assert not Conversation.objects.exists() and antispam.spam_count("webform", contact_form.pk) == 1


@pytest.mark.parametrize("token", ["", "forged", "other-form"])
def test_a_missing_forged_or_foreign_token_is_refused(contact_form, form_inbox, cast, token):
    if token == "other-form":
        other = do_save_webform(actor=cast["admin"], inbox=form_inbox, name="B", slug="b", fields=FIELDS)
        token = antispam.issue_token("webform", other.pk, issued_at=time.time() - 60)
    response = Client().post(
        reverse("connect:webform", args=["contact"]), {**GOOD, antispam.TOKEN_FIELD: token}
    )
    assert response.status_code == 400 and "could not be verified" in response.content.decode()
    assert not Conversation.objects.exists()


def test_an_expired_token_asks_to_send_again(contact_form):
    response = post_form(contact_form, GOOD, age=antispam.TOKEN_MAX_AGE + 5)
    assert response.status_code == 400 and "open too long" in response.content.decode()
    assert not Conversation.objects.exists()


def test_posts_past_the_hourly_limit_per_ip_get_a_clear_429(contact_form):
    client = Client(REMOTE_ADDR="203.0.113.7")
    statuses = [post_form(contact_form, {**GOOD, "email": f"c{i}@example.com"}, client=client).status_code
                for i in range(6)]  # fmt: skip
    assert statuses == [200, 200, 200, 200, 200, 429]
    assert Conversation.objects.count() == 5
    refused = post_form(contact_form, GOOD, client=client)
    assert refused.status_code == 429 and "Please try again later." in refused.content.decode()
    # another visitor is not affected
    assert post_form(contact_form, GOOD, client=Client(REMOTE_ADDR="203.0.113.8")).status_code == 200


def test_the_public_form_can_be_framed_and_is_rendered_with_a_token_and_a_hidden_honeypot(contact_form):
    response = Client().get(reverse("connect:webform", args=["contact"]))
    body = response.content.decode()
    assert response.status_code == 200 and "X-Frame-Options" not in response.headers
    assert f'name="{antispam.TOKEN_FIELD}"' in body and f'name="{antispam.HONEYPOT_FIELD}"' in body
    assert '<option value="Return"' in body and 'type="email"' in body and 'type="tel"' in body


def test_inactive_and_unknown_forms_are_not_found_and_store_nothing(contact_form, cast):
    do_save_webform(actor=cast["manager"], form=contact_form, inbox=contact_form.inbox, name="Contact us",
                    slug="contact", fields=FIELDS, is_active=False)  # fmt: skip
    assert Client().get("/connect/f/contact/").status_code == 404
    assert post_form(contact_form, GOOD).status_code == 404
    assert Client().get("/connect/f/nope/").status_code == 404
    assert not Conversation.objects.exists()


def test_field_definitions_are_validated_with_an_error_per_field():
    with pytest.raises(ValidationFailed) as exc:
        clean_field_definitions([
            {"name": "Bad Name", "label": "X", "type": "text"},
            {"name": "topic", "label": "Topic", "type": "select"},
            {"name": "email", "label": "", "type": "email"},
            {"name": "age", "label": "Age", "type": "number"},
            {"name": "ecrm_token", "label": "T", "type": "text"},
            {"name": "note", "label": "Note", "type": "text", "options": ["a"]},
        ])  # fmt: skip
    fields = exc.value.fields
    assert set(fields) == {"fields.0.name", "fields.1.options", "fields.2.label", "fields.3.type",
                           "fields.4.name", "fields.5.options"}  # fmt: skip
    assert "reserved" in fields["fields.4.name"]
    with pytest.raises(ValidationFailed) as exc:
        clean_field_definitions([{"name": "a", "label": "A"}, {"name": "a", "label": "B", "type": "email"}])
    assert exc.value.fields == {"fields.1.name": "the name 'a' is used twice"}
    with pytest.raises(ValidationFailed) as exc:
        clean_field_definitions([{"name": "message", "label": "Message", "type": "textarea"}])
    assert "email or phone" in exc.value.fields["fields"]
    with pytest.raises(ValidationFailed):
        clean_field_definitions([])


def test_a_manager_builds_a_form_in_the_console_and_gets_the_embed_snippet(form_inbox, login):
    client = login("manager")
    assert client.get(reverse("conversations:webform_new")).status_code == 200
    response = client.post(reverse("conversations:webform_new"), {
        "name": "Wholesale enquiry", "slug": "wholesale", "inbox": form_inbox.pk, "is_active": "1",
        "success_message": "We will call you.",
        "field-0-name": "company", "field-0-label": "Company", "field-0-type": "text", "field-0-required": "1",
        "field-1-name": "phone", "field-1-label": "Phone", "field-1-type": "phone", "field-1-required": "1",
        "field-2-name": "size", "field-2-label": "Order size", "field-2-type": "select",
        "field-2-options": "small, large",
        "field-3-name": "dropped", "field-3-label": "Dropped", "field-3-type": "text", "field-3-delete": "1",
        "field-4-name": "", "field-4-label": "", "field-4-type": "text",
    })  # fmt: skip
    form = WebForm.objects.get()
    assert response.status_code == 302 and response.url == reverse(
        "conversations:webform_edit", args=[form.pk]
    )
    assert [(f["name"], f["type"], f["required"], f["options"]) for f in form.fields] == [
        ("company", "text", True, []), ("phone", "phone", True, []), ("size", "select", False, ["small", "large"]),
    ]  # fmt: skip
    page = client.get(response.url).content.decode()
    assert '&lt;iframe src="http://testserver/connect/f/wholesale/"' in page


def test_the_builder_shows_errors_by_row_and_saves_nothing(form_inbox, login):
    response = login("manager").post(reverse("conversations:webform_new"), {
        "name": "", "slug": "Bad Slug!", "inbox": form_inbox.pk,
        "field-0-name": "email", "field-0-label": "Email", "field-0-type": "email",
        "field-1-name": "pick", "field-1-label": "Pick one", "field-1-type": "select",
    })  # fmt: skip
    body = response.content.decode()
    assert response.status_code == 200
    assert (
        "a choice list needs at least one option" in body
        and "lower-case letters, digits and single hyphens" in body
    )
    assert 'value="pick"' in body  # what was typed comes back
    assert not WebForm.objects.exists()


def test_a_slug_used_twice_is_a_field_error(contact_form, cast):
    with pytest.raises(ValidationFailed) as exc:
        do_save_webform(
            actor=cast["manager"], inbox=contact_form.inbox, name="Again", slug="contact", fields=FIELDS
        )
    assert exc.value.fields == {"slug": "another form already uses this address"}
    assert WebForm.objects.count() == 1


@pytest.mark.parametrize("who", ["agent_li", "marketer", "analyst", "nobody"])
def test_only_admins_and_managers_build_forms(contact_form, login, cast, who):
    client = login(who)
    before = list(WebForm.objects.values())
    assert client.get(reverse("conversations:webforms")).status_code == 403
    edit = client.post(reverse("conversations:webform_edit", args=[contact_form.pk]),
                       {"name": "Hacked", "slug": "contact", "inbox": contact_form.inbox_id,
                        "field-0-name": "email", "field-0-label": "E", "field-0-type": "email"})  # fmt: skip
    assert edit.status_code == 403
    assert client.post(reverse("conversations:webform_new"), {"name": "X", "slug": "x"}).status_code == 403
    assert list(WebForm.objects.values()) == before
    with pytest.raises(PermissionDenied):
        do_save_webform(actor=cast[who], inbox=contact_form.inbox, name="X", slug="x", fields=FIELDS)


def test_the_form_list_runs_a_fixed_number_of_queries(form_inbox, cast, login, django_assert_max_num_queries):
    for i in range(8):
        do_save_webform(actor=cast["admin"], inbox=form_inbox, name=f"Form {i}", slug=f"f{i}", fields=FIELDS)
    client = login("manager")
    with django_assert_max_num_queries(6):
        response = client.get(reverse("conversations:webforms"))
    assert response.content.decode().count("/connect/f/f") == 8


def test_another_app_can_receive_submissions_through_a_target(form_inbox, cast, monkeypatch):
    received = []
    monkeypatch.setitem(
        webform_services._TARGETS, "lead", lambda submission: received.append(submission) or "L1"
    )
    lead_inbox = create_inbox(
        actor=cast["admin"], name="Leads", kind="webform", team=None, config={"creates": "lead"}
    )
    form = do_save_webform(actor=cast["admin"], inbox=lead_inbox, name="Quote", slug="quote", fields=FIELDS)
    assert post_form(form, GOOD).status_code == 200
    assert [s.values["topic"] for s in received] == ["Return"] and not Conversation.objects.exists()
    with pytest.raises(ValidationFailed) as exc:
        create_inbox(actor=cast["admin"], name="X", kind="webform", team=None, config={"creates": "pizza"})
    assert "config.creates" in exc.value.fields


def test_an_agent_reply_to_a_form_goes_back_by_mail(contact_form, cast, django_capture_on_commit_callbacks):
    post_form(contact_form, GOOD)
    conv = Conversation.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        reply = do_send_reply(
            conversation=conv, actor=cast["agent_li"], body_text="Yes, bring them to any shop."
        )
    reply.refresh_from_db()
    assert reply.status == "sent" and reply.external_id.startswith("<")
    assert [(m.to, m.subject, m.body) for m in mail.outbox] == [
        (["xiaoming@example.com"], "Re: Contact us", "Yes, bring them to any shop.")
    ]


# --- the server-to-server API ----------------------------------------------------------------------

API = "/api/v1/conversations/webform/{}/submissions"


def test_the_shops_server_relays_a_submission_with_a_write_key(api, contact_form):
    response = api.post(API.format("contact"), {"values": {**GOOD, "newsletter": True},
                                                 "page": "https://shop.example/contact"})  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    conv = Conversation.objects.get()
    assert body == {"status": "stored", "conversation": conv.pk, "customer": conv.customer_id,
                    "message": Message.objects.get().pk}  # fmt: skip
    assert Message.objects.get().metadata["page"] == "https://shop.example/contact"
    assert Message.objects.get().metadata["fields"]["newsletter"] is True


def test_the_api_names_each_bad_or_unknown_field_and_stores_nothing(api, contact_form):
    empty = api.post(API.format("contact"), {"values": {}})
    assert empty.status_code == 422
    assert empty.json()["fields"] == {"name": "This field is required.", "message": "This field is required."}
    bad = api.post(API.format("contact"), {"values": {**GOOD, "email": "x@", "topic": "Other"}})
    assert bad.status_code == 422 and set(bad.json()["fields"]) == {"email", "topic"}
    unknown = api.post(API.format("contact"), {"values": {**GOOD, "coupon": "FREE", "message": ["a"]}})
    assert unknown.status_code == 422 and unknown.json()["fields"] == {"coupon": "not a field of this form"}
    nested = api.post(API.format("contact"), {"values": {**GOOD, "message": ["a"]}})
    assert nested.status_code == 422 and nested.json()["fields"] == {"message": "must be text or true/false"}
    envelope = api.post(API.format("contact"), {"vals": {}})
    assert envelope.status_code == 422 and set(envelope.json()["fields"]) == {"values", "vals"}
    assert not Conversation.objects.exists() and not Customer.objects.exists()


def test_the_api_refuses_read_keys_no_key_unknown_and_closed_forms(
    api, api_read, api_anon, contact_form, cast
):
    payload = {"values": GOOD}
    assert api_read.post(API.format("contact"), payload).status_code == 403
    assert api_anon.post(API.format("contact"), payload).status_code == 401
    assert api.post(API.format("nope"), payload).status_code == 404
    do_save_webform(actor=cast["manager"], form=contact_form, inbox=contact_form.inbox, name="Contact us",
                    slug="contact", fields=FIELDS, is_active=False)  # fmt: skip
    closed = api.post(API.format("contact"), payload)
    assert closed.status_code == 409 and closed.json()["message"] == "This form is closed."
    assert not Conversation.objects.exists()
