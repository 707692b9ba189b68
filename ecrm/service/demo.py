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

from .models import Ticket, TicketType
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


def seed_contact_center(conversations: int = 60, *, seed: int = 4) -> dict[str, int]:
    """Idempotent enough for `make run`: does nothing when conversations already exist."""
    if Conversation.objects.exists():
        return {"articles": 0, "conversations": 0, "tickets": 0}
    articles = seed_help_center()
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
