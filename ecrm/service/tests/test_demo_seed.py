"""`seed_contact_center` fills the help center, the inbox and the ticket list through the services."""

from __future__ import annotations

from django.core.management import call_command

from ecrm.conversations.models import Conversation, Message
from ecrm.knowledge.selectors import search_articles
from ecrm.service.models import Ticket


def test_seed_contact_center_builds_a_believable_desk_once(db, capsys):
    call_command("seed_contact_center", conversations=20)
    assert Conversation.objects.count() == 20
    assert Message.objects.filter(direction="in").count() >= 20
    tickets = Ticket.objects.count()
    assert 1 <= tickets < 20
    assert [r.version.title for r in search_articles("我的订单什么时候发货", language="zh-hans")][
        0
    ] == "发货时间说明"
    assert [r.version.title for r in search_articles("when will my order ship", language="en")][
        0
    ] == "Shipping times"
    call_command("seed_contact_center", conversations=20)  # a second start seeds nothing more
    assert Conversation.objects.count() == 20 and Ticket.objects.count() == tickets
    assert "0 conversations" in capsys.readouterr().out
