"""Conversations on the customer timeline: one entry per message (notes stay internal)."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils.translation import gettext as _

from ecrm.customers.timeline import TimelineEntry

from .models import Message, MessageDirection


def conversations_source(customer, before: dt.datetime | None, limit: int, user=None) -> list[TimelineEntry]:
    """Messages the viewer may see (their teams' conversations); nothing for a viewer who may not
    see conversations at all (an analyst sees orders and events, not what customers wrote)."""
    from ecrm.core.permissions import has_perm

    from .selectors import visibility_q

    if user is None or not has_perm(user, "conversations.view"):
        return []
    qs = (
        Message.objects.filter(conversation__customer=customer)
        .filter(visibility_q(user, "conversation__"))
        .exclude(direction=MessageDirection.NOTE)
    )
    if before is not None:
        qs = qs.filter(created_at__lte=before)
    rows = qs.select_related("conversation").order_by("-created_at", "-id")[:limit]
    entries = []
    for m in rows:
        conv = m.conversation
        title = _("Message from the customer") if m.direction == MessageDirection.INBOUND else _("Reply sent")
        entries.append(
            TimelineEntry(
                at=m.created_at,
                kind="message",
                key=f"message:{m.pk:012d}",
                title=f"{title} · {conv.get_channel_display()}",
                body=(conv.subject + " — " if conv.subject else "") + (m.body_text or "")[:200],
                meta={"channel": conv.channel, "direction": m.direction},
                url=reverse("conversations:detail", args=[conv.pk]),
            )
        )
    return entries
