"""Portal pages: a customer sees and acts on their own orders, returns and tickets only; another
customer's are 404 by URL guessing and nothing changes. Tickets, replies, returns, help and chat."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from ecrm.commerce.models import Return
from ecrm.conversations.channels.chat.identity import verify_customer
from ecrm.conversations.models import Inbox
from ecrm.customers.tests.factories import make_customer, make_order
from ecrm.knowledge.tests.factories import published_article
from ecrm.portal.selectors import SESSION_KEY
from ecrm.service.models import ReturnRequest, Ticket, TicketComment
from ecrm.service.services import do_create_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    a = make_customer(first_name="Fang", last_name="Wang", email="wang@example.com")
    b = make_customer(first_name="Bo", last_name="Li", email="li@example.com")
    a_order = make_order(a, number="SO-A1", status="shipped", total="200.00", lines=2)
    a_order.tracking_number = "SF1234567890"
    a_order.save(update_fields=["tracking_number"])
    b_order = make_order(b, number="SO-B1", status="delivered", total="50.00")
    b_ticket = do_create_ticket(
        actor=None, customer=b, subject="B's private question", body="secret", source="portal"
    )
    return {"a": a, "b": b, "a_order": a_order, "b_order": b_order, "b_ticket": b_ticket}


@pytest.fixture
def as_a(client, people):
    session = client.session
    session[SESSION_KEY] = people["a"].pk
    session.save()
    return client


def test_orders_list_shows_own_orders_with_status_and_tracking(as_a, people, django_assert_max_num_queries):
    for i in range(10):
        make_order(people["a"], number=f"SO-A-{i:02d}")
    with django_assert_max_num_queries(6):
        page = as_a.get(reverse("portal:orders"))
    body = page.content.decode()
    assert page.status_code == 200
    assert "SO-A1" in body and "Shipped" in body and "SF1234567890" in body
    assert len(re.findall(r'href="/portal/orders/\d+/"', body)) == 11
    assert "SO-B1" not in body


def test_order_detail_shows_lines_history_and_tracking(as_a, people):
    page = as_a.get(reverse("portal:order", args=[people["a_order"].pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert 'id="tracking">SF1234567890<' in body
    assert "Item 1" in body and "Item 2" in body
    assert "<strong>shipped</strong>" in body


def test_other_customers_order_is_404_and_return_on_it_changes_nothing(as_a, people):
    b_order = people["b_order"]
    assert as_a.get(reverse("portal:order", args=[b_order.pk])).status_code == 404
    b_line = b_order.lines.get()
    response = as_a.post(
        reverse("portal:request_return", args=[b_order.pk, b_line.pk]), {"quantity": "1", "reason": "Broken"}
    )
    assert response.status_code == 404
    # pairing A's order id with B's line id is refused too
    response = as_a.post(
        reverse("portal:request_return", args=[people["a_order"].pk, b_line.pk]),
        {"quantity": "1", "reason": "x"},
    )
    assert response.status_code == 404
    assert Return.objects.count() == 0 and ReturnRequest.objects.count() == 0


def test_request_a_return_on_own_line(as_a, people):
    order = people["a_order"]
    line = order.lines.get(line_no=1)
    response = as_a.post(
        reverse("portal:request_return", args=[order.pk, line.pk]), {"quantity": "1", "reason": "Wrong size"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("portal:order", args=[order.pk])
    request = ReturnRequest.objects.select_related("return_record", "ticket").get()
    assert (request.customer, request.source) == (people["a"], "portal")
    assert (request.return_record.order_line, request.return_record.quantity, request.return_record.reason) == (
        line, Decimal("1.000"), "Wrong size",
    )  # fmt: skip
    assert request.ticket.customer == people["a"] and request.ticket.type == "return_refund"
    page = as_a.get(reverse("portal:order", args=[order.pk])).content.decode()
    assert "Wrong size" in page and "Requested" in page


def test_invalid_return_shows_a_clear_error_and_saves_nothing(as_a, people):
    order = people["a_order"]
    line = order.lines.get(line_no=1)
    response = as_a.post(
        reverse("portal:request_return", args=[order.pk, line.pk]), {"quantity": "5", "reason": ""}
    )
    body = response.content.decode()
    assert response.status_code == 422
    assert "At most 1 can still be returned." in body and "Tell us why." in body
    assert ReturnRequest.objects.count() == 0 and Return.objects.count() == 0


def test_open_ticket_see_it_and_reply(as_a, people):
    response = as_a.post(
        reverse("portal:tickets"),
        {
            "subject": "Where is my parcel?",
            "body": "Order SO-A1 has not arrived.",
            "order": people["a_order"].pk,
        },
    )
    ticket = Ticket.objects.get(customer=people["a"])
    assert response.status_code == 302 and response["Location"] == reverse("portal:ticket", args=[ticket.pk])
    assert (ticket.subject, ticket.source, ticket.order) == (
        "Where is my parcel?",
        "portal",
        people["a_order"],
    )
    listing = as_a.get(reverse("portal:tickets")).content.decode()
    assert "Where is my parcel?" in listing and "private question" not in listing

    reply = as_a.post(reverse("portal:ticket", args=[ticket.pk]), {"body": "Any news? <script>x()</script>"})
    assert reply.status_code == 302
    comment = TicketComment.objects.get(ticket=ticket)
    assert (comment.customer, comment.is_public) == (people["a"], True)
    page = as_a.get(reverse("portal:ticket", args=[ticket.pk])).content.decode()
    assert "Any news? &lt;script&gt;x()&lt;/script&gt;" in page


def test_ticket_form_errors(as_a, people):
    response = as_a.post(
        reverse("portal:tickets"), {"subject": "", "body": "x", "order": people["b_order"].pk}
    )
    assert response.status_code == 422
    assert "Choose one of your orders." in response.content.decode()
    response = as_a.post(reverse("portal:tickets"), {"subject": "", "body": "x"})
    assert response.status_code == 422 and "This field is required." in response.content.decode()
    empty_reply_ticket = do_create_ticket(actor=None, customer=people["a"], subject="Mine", source="portal")
    reply = as_a.post(reverse("portal:ticket", args=[empty_reply_ticket.pk]), {"body": "   "})
    assert reply.status_code == 422
    assert Ticket.objects.filter(customer=people["a"]).count() == 1
    assert TicketComment.objects.count() == 0


def test_other_customers_ticket_is_404_and_reply_changes_nothing(as_a, people):
    b_ticket = people["b_ticket"]
    assert as_a.get(reverse("portal:ticket", args=[b_ticket.pk])).status_code == 404
    response = as_a.post(reverse("portal:ticket", args=[b_ticket.pk]), {"body": "let me in"})
    assert response.status_code == 404
    assert TicketComment.objects.filter(ticket=b_ticket).count() == 0
    b_ticket.refresh_from_db()
    assert b_ticket.status == "new"


def test_help_search_shows_public_articles_only(as_a):
    published_article("shipping-times", title="Shipping times", body="We ship in 48 hours.")
    published_article("agent-notes", title="Shipping escalations", body="Internal.", visibility="internal")
    page = as_a.get(reverse("portal:help"), {"q": "shipping"}).content.decode()
    assert "<mark>Shipping</mark> times" in page and "escalations" not in page
    assert 'href="/help/a/shipping-times/?lang=en"' in page


def test_chat_widget_is_embedded_with_a_signed_customer_token(as_a, people):
    page = as_a.get(reverse("portal:home")).content.decode()
    assert "/connect/chat/widget.js" not in page  # no chat inbox configured
    inbox = Inbox.objects.create(name="Shop chat", kind="chat")
    page = as_a.get(reverse("portal:home")).content.decode()
    tag = page[page.index('<script src="/connect/chat/widget.js"') :]
    assert f'data-inbox="{inbox.pk}"' in tag
    token = tag.split('data-customer-token="')[1].split('"')[0]
    assert verify_customer(token) == people["a"].pk


def test_merged_customer_session_follows_the_surviving_profile(client, people):
    from ecrm.customers.models import Customer

    a, b = people["a"], people["b"]
    Customer.objects.filter(pk=b.pk).update(merged_into=a, status="merged")
    session = client.session
    session[SESSION_KEY] = b.pk
    session.save()
    page = client.get(reverse("portal:orders")).content.decode()
    assert "SO-A1" in page
