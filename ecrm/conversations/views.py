"""Console pages of the agent inbox."""

from __future__ import annotations

from django.shortcuts import render

from ecrm.core.web import console_view

from . import selectors


@console_view("conversations.view")
def inbox(request):
    conversations = (
        selectors.conversations_for_user(request.user)
        .select_related("customer", "assignee", "inbox")
        .order_by("-last_message_at", "-id")[:50]
    )
    return render(request, "conversations/inbox.html", {"conversations": conversations})


@console_view("conversations.view")
def detail(request, pk: int):
    conversation = selectors.access_conversation_for_user(request.user, pk)
    messages = selectors.conversation_messages(conversation)
    return render(request, "conversations/detail.html", {"conversation": conversation, "messages": messages})
