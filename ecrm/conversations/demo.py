"""Demo conversations for `make run`: a believable inbox on both teams, every channel, some
answered, some with notes, some resolved. `seed_conversations(n)` goes through the real services
(receive_inbound, do_send_reply, do_add_note, do_set_status), so customers, timelines and audit rows
are what production would have. Idempotent enough to run twice: it adds n more conversations."""

from __future__ import annotations

import datetime as dt
import random

from django.utils import timezone

from ecrm.core.demo import ensure_demo_users
from ecrm.core.models import Team

from .models import ChannelKind, Inbox

QUESTIONS = [
    ("Where is my order?", "My order has not arrived yet, can you check the tracking?"),
    ("退货申请", "你好，我收到的茶叶包装破损了，想申请退货。"),
    ("Wrong size", "I ordered the 500 g tin but got 250 g. Can you exchange it?"),
    ("发票问题", "请问可以开具增值税专用发票吗？"),
    ("Gift wrapping", "Can you gift-wrap the celadon tea set and add a card?"),
    ("优惠券无法使用", "结账时优惠券显示无效，请帮忙看看。"),
    ("Change address", "I moved last week, please ship to my new address."),
    ("Refund status", "I returned the cups ten days ago. When will I get my refund?"),
]
PEOPLE = [
    ("丽娜", "王", "lina.wang@example.cn"), ("Oliver", "Smith", "oliver.smith@example.co.uk"),
    ("伟", "张", "zhang.wei@example.cn"), ("Emily", "Chen", "emily.chen@example.com"),
    ("芳", "李", "li.fang@example.cn"), ("Lucas", "Müller", "lucas.mueller@example.de"),
]  # fmt: skip


def _inboxes() -> list[Inbox]:
    cn, en = Team.objects.get(name="Service CN"), Team.objects.get(name="Service EN")
    out = []
    for team, kinds in (
        (cn, [ChannelKind.EMAIL, ChannelKind.CHAT]),
        (en, [ChannelKind.EMAIL, ChannelKind.WEBFORM]),
    ):
        for kind in kinds:
            inbox, _ = Inbox.objects.get_or_create(
                name=f"Demo {team.name} {kind.label}", defaults={"kind": kind, "team": team}
            )
            out.append(inbox)
    return out


def seed_conversations(n: int = 40, *, seed: int = 4) -> int:
    """Create `n` demo conversations; returns how many were created."""
    from .services import Inbound, do_add_note, do_send_reply, do_set_status, receive_inbound

    users = {u.username: u for u in ensure_demo_users()}
    inboxes = _inboxes()
    rng = random.Random(seed)
    now = timezone.now()
    created = 0
    for i in range(n):
        inbox = inboxes[i % len(inboxes)]
        first, last, email = PEOPLE[rng.randrange(len(PEOPLE))]
        subject, body = QUESTIONS[rng.randrange(len(QUESTIONS))]
        identities = [("email", email)]
        result = receive_inbound(Inbound(
            inbox=inbox, identities=identities, subject=subject, body_text=body,
            traits={"first_name": first, "last_name": last},
            thread_key=f"demo-{seed}-{i}" if inbox.kind == ChannelKind.CHAT else "",
            sent_at=now - dt.timedelta(minutes=rng.randrange(5, 60 * 24 * 14)),
        ))  # fmt: skip
        created += int(result.created_conversation)
        conv = result.conversation
        agent = users["agent_li"] if inbox.team and inbox.team.name == "Service CN" else users["agent_bob"]
        roll = rng.random()
        if roll < 0.5:
            do_send_reply(
                conversation=conv, actor=agent, body_text="Thanks for writing — I'm looking into it now."
            )
        if roll < 0.25:
            do_add_note(
                conversation=conv, actor=agent, body="@manager customer asked twice, please keep an eye on it"
            )
        if roll < 0.15:
            do_set_status(conversation=conv, actor=agent, status="resolved")
    return created
