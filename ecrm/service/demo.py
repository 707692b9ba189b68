"""Demo data for the contact center: help articles (English and Chinese), conversations on every
demo inbox, and tickets opened from some of them. Everything goes through the services."""

from __future__ import annotations

import random

from django.db import transaction

from ecrm.conversations.demo import seed_conversations
from ecrm.conversations.models import Conversation
from ecrm.core.demo import ensure_demo_users
from ecrm.knowledge.models import Article
from ecrm.knowledge.services import do_create_article, do_create_category, do_publish, do_save_draft

from .models import Ticket, TicketFieldDefinition, TicketType
from .services import do_create_ticket

ARTICLES = [
    # slug, category, (English title, body), (Chinese title, body)
    (
        "shipping-times",
        "orders",
        (
            "Shipping times",
            "Orders placed before 16:00 ship the same working day. Delivery takes 1–3 days "
            "in mainland China and 5–10 days abroad. You can follow your parcel from *My orders*.",
        ),
        (
            "发货时间说明",
            "工作日 16:00 前下单当天发货。中国大陆 1–3 天送达，海外 5–10 天。"
            "您可以在“我的订单”中查看物流进度。",
        ),
    ),
    (
        "returns",
        "orders",
        (
            "Returns and refunds",
            "You can return any item within 7 days of delivery. Request the return from "
            "*My orders*; the refund reaches your original payment method within 3 working days of our receipt.",
        ),
        (
            "退货与退款",
            "签收后 7 天内可申请退货。请在“我的订单”中提交退货申请，我们收到退货后 3 个工作日内原路退款。",
        ),
    ),
    (
        "change-address",
        "account",
        (
            "Changing the delivery address",
            "Until an order ships you can change its address in *My orders*, "
            "or write to us with the order number.",
        ),
        ("修改收货地址", "订单发货前，您可以在“我的订单”中修改收货地址，或联系客服并提供订单号。"),
    ),
]


@transaction.atomic
def seed_help_center() -> int:
    if Article.objects.exists():
        return 0
    admin = ensure_demo_users()[0]
    categories = {
        "orders": do_create_category(
            actor=admin, slug="orders", name_en="Orders and delivery", name_zh="订单与配送"
        ),
        "account": do_create_category(actor=admin, slug="account", name_en="Your account", name_zh="账户"),
    }
    for slug, cat, (title_en, body_en), (title_zh, body_zh) in ARTICLES:
        version = do_create_article(actor=admin, slug=slug, language="en", title=title_en, body=body_en,
                                    category=categories[cat])  # fmt: skip
        do_publish(actor=admin, article=version.article, language="en")
        do_save_draft(actor=admin, article=version.article, language="zh-hans", title=title_zh, body=body_zh)
        do_publish(actor=admin, article=version.article, language="zh-hans")
    return len(ARTICLES)


# The demo complaint flow: customer service investigates, the warehouse checks the stock or the
# parcel, finance refunds, customer service closes the case (docs/ticket-flows.md).
COMPLAINT_FLOW = {
    "name": "Complaint",
    "ticket_type": "complaint",
    "description": "Customer service → warehouse → finance → customer service.",
    "active": True,
    "business_hours": True,
    "stages": [
        {"key": "investigating", "label": "Investigating", "team": "Service CN", "sla_minutes": 240,
         "status": "open", "initial": True, "final": False},
        {"key": "waiting_customer", "label": "Waiting on customer", "team": "Service CN", "sla_minutes": None,
         "status": "pending", "initial": False, "final": False},
        {"key": "warehouse_check", "label": "Warehouse check", "team": "Warehouse", "sla_minutes": 480,
         "status": "open", "initial": False, "final": False},
        {"key": "refund", "label": "Refund", "team": "Finance", "sla_minutes": 480,
         "status": "open", "initial": False, "final": False},
        {"key": "resolved", "label": "Resolved", "team": "Service CN", "sla_minutes": None,
         "status": "solved", "initial": False, "final": True},
    ],
    "transitions": [
        {"from": "investigating", "to": "warehouse_check", "label": "Warehouse check", "roles": [],
         "teams": ["Service CN"], "requires": ["note"]},
        {"from": "investigating", "to": "waiting_customer", "label": "Ask the customer", "roles": [],
         "teams": ["Service CN"], "requires": []},
        {"from": "investigating", "to": "resolved", "label": "Resolved", "roles": [],
         "teams": ["Service CN"], "requires": []},
        {"from": "waiting_customer", "to": "investigating", "label": "Customer answered", "roles": [],
         "teams": ["Service CN"], "requires": []},
        {"from": "warehouse_check", "to": "refund", "label": "Refund", "roles": [],
         "teams": ["Warehouse"], "requires": ["note"]},
        {"from": "warehouse_check", "to": "investigating", "label": "Back to customer service", "roles": [],
         "teams": ["Warehouse"], "requires": ["note"]},
        {"from": "refund", "to": "resolved", "label": "Refunded", "roles": [],
         "teams": ["Finance"], "requires": ["refund_amount"]},
        {"from": "resolved", "to": "investigating", "label": "Reopen", "roles": [],
         "teams": ["Service CN"], "requires": []},
    ],
}  # fmt: skip

# Demo people for the two back-office teams (the cast in ecrm/core/demo.py staffs customer service).
BACK_OFFICE = [("warehouse_wu", "Wu", "Hao", "Warehouse"), ("finance_fei", "Fei", "Zhou", "Finance")]


@transaction.atomic
def seed_ticket_flows() -> int:
    """The complaint flow, its teams and their demo agents, and the refund amount field. Idempotent."""
    from ecrm.core.demo import DEMO_PASSWORD
    from ecrm.core.models import Role, Team, User

    from .flows.models import TicketFlow
    from .flows.services import save_flow

    if TicketFlow.objects.filter(name=COMPLAINT_FLOW["name"]).exists():
        return 0
    ensure_demo_users()
    for username, first, last, team_name in BACK_OFFICE:
        team, _ = Team.objects.get_or_create(name=team_name)
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, role=Role.AGENT, first_name=first, last_name=last,
                        email=f"{username}@example.com")  # fmt: skip
            user.set_password(DEMO_PASSWORD)
            user.save()
        user.teams.add(team)
    TicketFieldDefinition.objects.get_or_create(
        key="refund_amount", defaults={"label": "Refund amount", "type": "number"}
    )
    save_flow(actor=None, data=COMPLAINT_FLOW)
    return 1


def seed_contact_center(conversations: int = 60, *, seed: int = 4) -> dict[str, int]:
    """Idempotent enough for `make run`: does nothing when conversations already exist."""
    if Conversation.objects.exists():
        return {"articles": 0, "conversations": 0, "tickets": 0}
    articles = seed_help_center()
    seed_ticket_flows()
    created = seed_conversations(conversations, seed=seed)
    rng = random.Random(seed)
    tickets = 0
    for conv in Conversation.objects.select_related("customer").order_by("id"):
        if rng.random() < 0.3 and not Ticket.objects.filter(conversations=conv).exists():
            do_create_ticket(actor=None, customer=conv.customer, subject=conv.subject or "Chat",
                             body="Opened from the demo conversation.", conversation=conv,
                             type=rng.choice([TicketType.QUESTION, TicketType.COMPLAINT, TicketType.DELIVERY_PROBLEM]),
                             source="system")  # fmt: skip
            tickets += 1
    return {"articles": articles, "conversations": created, "tickets": tickets}
