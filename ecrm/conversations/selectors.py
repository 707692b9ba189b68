"""Reads on conversations, with the visibility rule in one place: managers and admins see all;
agents see conversations on their teams, with no team, or assigned to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from ecrm.core.exceptions import NotFound
from ecrm.core.models import Team, User
from ecrm.core.permissions import check_perm, has_perm

from .models import Conversation, Message


def visibility_q(user: Any, prefix: str = "") -> Q:
    """The Q that limits any query on conversations (or things on them, via `prefix`) to `user`."""
    if has_perm(user, "conversations.view_all"):
        return Q()
    team_ids = user.teams.values("id")  # a subquery: no extra round trip
    return (
        Q(**{f"{prefix}team_id__in": team_ids})
        | Q(**{f"{prefix}team__isnull": True})
        | Q(**{f"{prefix}assignee_id": user.pk})
    )


def can_see_conversation(user: Any, conversation: Conversation) -> bool:
    if not has_perm(user, "conversations.view"):
        return False
    if has_perm(user, "conversations.view_all"):
        return True
    if conversation.assignee_id == user.pk or conversation.team_id is None:
        return True
    return user.teams.filter(pk=conversation.team_id).exists()


def check_conversation_visible(user: Any, conversation: Conversation) -> None:
    if not can_see_conversation(user, conversation):
        # 404, not 403: an agent must not learn that another team's conversation exists
        raise NotFound("No such conversation.")


def can_work_on(user: User, team: Team | None) -> bool:
    """May `user` be assigned work on `team`?"""
    if not user.is_active or not has_perm(user, "conversations.reply"):
        return False
    return team is None or has_perm(user, "conversations.view_all") or user.teams.filter(pk=team.pk).exists()


def conversations_for_user(user: Any) -> QuerySet[Conversation]:
    check_perm(user, "conversations.view")
    return Conversation.objects.filter(visibility_q(user))


def access_conversation_for_user(user: Any, conversation_id: int) -> Conversation:
    check_perm(user, "conversations.view")
    conv = (
        Conversation.objects.select_related("customer", "inbox", "team", "assignee")
        .filter(pk=conversation_id)
        .filter(visibility_q(user))
        .first()
    )
    if conv is None:
        raise NotFound("No such conversation.")
    return conv


def conversation_messages(conversation: Conversation) -> QuerySet[Message]:
    return (
        Message.objects.filter(conversation=conversation)
        .select_related("author")
        .prefetch_related("attachments")
        .order_by("created_at", "id")
    )


@dataclass
class InboxFilters:
    view: str = "all"  # mine | unassigned | teams | all
    status: str = "open"  # open | pending | resolved | any
    channel: str = ""
    inbox: int | None = None
    q: str = ""


def team_agents(team_id: int) -> list[User]:
    """Active members of a team who may take conversations, in a stable order."""
    return list(
        User.objects.filter(teams__id=team_id, is_active=True, role__in=["agent", "manager"]).order_by("id")
    )


# --- The agent inbox list --------------------------------------------------------------------------

INBOX_VIEWS = ("mine", "unassigned", "teams", "all")
INBOX_STATUSES = ("open", "pending", "resolved", "any")
# A search resolves to at most this many customers (an email prefix could match thousands).
MAX_SEARCH_CUSTOMERS = 500
EXPORT_LIMIT = 10_000


def conversations_for_principal(principal: Any) -> QuerySet[Conversation]:
    """Console users see their teams' conversations; integration keys with the read or write scope
    see all of them (they act for the whole shop, as on the customers API)."""
    from ecrm.core.exceptions import PermissionDenied
    from ecrm.core.models import ApiKey, ApiKeyScope

    if isinstance(principal, ApiKey):
        if principal.scope not in (ApiKeyScope.READ, ApiKeyScope.WRITE):
            raise PermissionDenied("This API key may not read conversations.", code="scope_denied")
        return Conversation.objects.all()
    return conversations_for_user(principal)


def access_conversation_for_principal(principal: Any, conversation_id: int) -> Conversation:
    conv = (
        conversations_for_principal(principal)
        .select_related("customer", "inbox", "team", "assignee")
        .filter(pk=conversation_id)
        .first()
    )
    if conv is None:
        raise NotFound("No such conversation.")
    return conv


def inbox_filters_from_params(params: Any) -> InboxFilters:
    """The list's filters from a query string (page, export and API share this)."""
    get = params.get
    inbox_raw = (get("inbox") or "").strip()
    return InboxFilters(
        view=(get("view") or "all").strip(),
        status=(get("status") or "open").strip(),
        channel=(get("channel") or "").strip(),
        inbox=int(inbox_raw) if inbox_raw.isdigit() else None,
        q=(get("q") or "").strip()[:200],
    )


def check_inbox_filters(filters: InboxFilters) -> None:
    from ecrm.core.exceptions import ValidationFailed

    from .models import ChannelKind

    errors = {}
    if filters.view not in INBOX_VIEWS:
        errors["view"] = f"must be one of {', '.join(INBOX_VIEWS)}"
    if filters.status not in INBOX_STATUSES:
        errors["status"] = f"must be one of {', '.join(INBOX_STATUSES)}"
    if filters.channel and filters.channel not in ChannelKind.values:
        errors["channel"] = f"must be one of {', '.join(ChannelKind.values)}"
    if errors:
        raise ValidationFailed("Some filters are not valid.", fields=errors)


def _search_parts(q: str) -> tuple[list[int], bool]:
    """(customer ids the words point to, whether to search subjects too). An email or phone number
    is looked up through identities only; a name also matches subjects ("refund", "物流")."""
    from ecrm.customers.models import Customer
    from ecrm.customers.normalize import normalize_name
    from ecrm.customers.selectors import PREFIX_END, search_customer_ids

    ids = search_customer_ids(q)
    from ecrm.customers.selectors import _PHONE_LIKE

    exact_identifier = "@" in q or bool(_PHONE_LIKE.match(q))
    if ids is None:
        name = normalize_name(q)
        ids = list(
            Customer.objects.filter(search_name__gte=name, search_name__lt=name + PREFIX_END)
            .order_by("search_name")
            .values_list("id", flat=True)[:MAX_SEARCH_CUSTOMERS]
        )
    return sorted(set(ids))[:MAX_SEARCH_CUSTOMERS], not exact_identifier


def inbox_queryset(user: Any, filters: InboxFilters) -> QuerySet[Conversation]:
    """Visible conversations matching the filters, newest activity first. Every view is a filter on
    one of the (status|team|assignee, -last_message_at) indexes of the model."""
    check_inbox_filters(filters)
    qs = conversations_for_principal(user)
    if not isinstance(user, User) and filters.view in ("mine", "teams"):
        from ecrm.core.exceptions import ValidationFailed

        raise ValidationFailed(
            "An API key has no assignments or teams.", fields={"view": "needs a signed-in user"}
        )
    if filters.view == "mine":
        qs = qs.filter(assignee_id=user.pk)
    elif filters.view == "unassigned":
        qs = qs.filter(assignee__isnull=True)
    elif filters.view == "teams":
        qs = qs.filter(team_id__in=user.teams.values("id"))
    if filters.status != "any":
        qs = qs.filter(status=filters.status)
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.inbox:
        qs = qs.filter(inbox_id=filters.inbox)
    if filters.q:
        ids, subject_too = _search_parts(filters.q)
        cond = Q(customer_id__in=ids) if ids else Q(pk__in=[])
        if subject_too:
            cond |= Q(subject__icontains=filters.q)
        qs = qs.filter(cond)
    return qs.order_by("-last_message_at", "-id")


@dataclass
class InboxPage:
    conversations: list[Conversation]
    next_cursor: str | None


def encode_cursor(conv: Conversation) -> str:
    ts = conv.last_message_at.isoformat() if conv.last_message_at else ""
    return f"{ts}|{conv.pk}"


def _after_cursor(cursor: str) -> Q:
    """Keyset condition for the rows after `cursor` in (-last_message_at, -id) order. A conversation
    without any message yet (no last_message_at) sorts where the database puts NULLs in a
    descending index walk: last on SQLite, first on PostgreSQL; the condition follows suit, so
    every row is on exactly one page on both."""
    import datetime as dt

    from django.db import connection

    from ecrm.core.exceptions import ValidationFailed

    try:
        ts_raw, id_raw = cursor.rsplit("|", 1)
        pk = int(id_raw)
        ts = dt.datetime.fromisoformat(ts_raw) if ts_raw else None
    except ValueError:
        raise ValidationFailed("The page cursor is not valid.", fields={"after": "invalid cursor"}) from None
    nulls_first = connection.features.nulls_order_largest
    if ts is None:
        cond = Q(last_message_at__isnull=True, id__lt=pk)
        return cond | Q(last_message_at__isnull=False) if nulls_first else cond
    cond = Q(last_message_at__lt=ts) | Q(last_message_at=ts, id__lt=pk)
    return cond if nulls_first else cond | Q(last_message_at__isnull=True)


ROW_RELATED = ("customer", "assignee", "inbox", "team")


def _top(qs: QuerySet[Conversation], n: int) -> list[Conversation]:
    # the plain (-last_message_at, -id) order walks the (status|team|assignee, -last_message_at) indexes
    return list(qs.select_related(*ROW_RELATED).order_by("-last_message_at", "-id")[:n])


def _sort_key(conv: Conversation) -> tuple:
    from django.db import connection

    has_ts = conv.last_message_at is not None
    # descending order: a larger key comes first
    null_rank = (not has_ts) if connection.features.nulls_order_largest else has_ts
    return (null_rank, conv.last_message_at.timestamp() if has_ts else 0.0, conv.pk)


def _page_rows(user: Any, filters: InboxFilters, after: str | None, n: int) -> list[Conversation]:
    """The first `n` rows after the cursor. "Any status" and searches are split into parts that each
    walk one index (one per status; customers found by identity vs. subject words), merged here:
    a single OR query would sort every matching row of the table instead."""
    statuses = ["open", "pending", "resolved"] if filters.status == "any" else [filters.status]
    parts: list[QuerySet[Conversation]] = []
    for status in statuses:
        one = InboxFilters(view=filters.view, status=status, channel=filters.channel, inbox=filters.inbox)
        qs = inbox_queryset(user, one)
        if after:
            qs = qs.filter(_after_cursor(after))
        if filters.q:
            ids, subject_too = _search_parts(filters.q)
            if ids:
                parts.append(qs.filter(customer_id__in=ids))
            if subject_too:
                parts.append(qs.filter(subject__icontains=filters.q))
        else:
            parts.append(qs)
    if len(parts) == 1:
        return _top(parts[0], n)
    merged: dict[int, Conversation] = {}
    for part in parts:
        for conv in _top(part, n):
            merged[conv.pk] = conv
    return sorted(merged.values(), key=_sort_key, reverse=True)[:n]


def inbox_page_for_user(
    user: Any, filters: InboxFilters, *, after: str | None = None, limit: int | None = None
) -> InboxPage:
    """One page of the inbox by keyset (no OFFSET, no COUNT): the next cursor exists when one more
    row than the page size came back."""
    from django.conf import settings

    limit = max(1, min(limit or settings.ECRM_PAGE_SIZE, 200))
    check_inbox_filters(filters)
    rows = _page_rows(user, filters, after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return InboxPage(conversations=rows, next_cursor=encode_cursor(rows[-1]) if more and rows else None)


def inbox_export_rows(user: Any, filters: InboxFilters, *, limit: int = EXPORT_LIMIT) -> list[Conversation]:
    """The same rows as the list (same visibility and order), capped, for the CSV export."""
    check_inbox_filters(filters)
    return _page_rows(user, filters, None, limit)


def inbox_counts(user: Any) -> dict[str, int]:
    """Open conversations per view for the tabs, each a capped count so a huge backlog stays cheap."""
    base = conversations_for_user(user).filter(status="open")
    cap = 1000

    def capped(qs: QuerySet) -> int:
        return len(qs.order_by().values_list("id", flat=True)[:cap])

    return {
        "mine": capped(base.filter(assignee_id=user.pk)),
        "unassigned": capped(base.filter(assignee__isnull=True)),
    }


def conversation_row_for_user(user: Any, conversation_id: int) -> Conversation:
    """One list row (the htmx refresh of a row after a live update)."""
    check_perm(user, "conversations.view")
    conv = (
        Conversation.objects.select_related("customer", "assignee", "inbox", "team")
        .filter(pk=conversation_id)
        .filter(visibility_q(user))
        .first()
    )
    if conv is None:
        raise NotFound("No such conversation.")
    return conv


def messages_after(conversation: Conversation, after_id: int | None) -> list[Message]:
    """Messages newer than the last one a page shows (the live refresh of #messages)."""
    qs = conversation_messages(conversation)
    if after_id:
        qs = qs.filter(id__gt=after_id)
    return list(qs)


def assignable_agents(conversation: Conversation) -> list[User]:
    """Who the conversation can be handed to: active agents and managers of its team (all for no team)."""
    qs = User.objects.filter(is_active=True, role__in=["agent", "manager", "admin"])
    if conversation.team_id:
        qs = qs.filter(Q(teams__id=conversation.team_id) | Q(role__in=["manager", "admin"]))
    return list(qs.distinct().order_by("username"))


def team_channel_choices() -> list[tuple[str, str]]:
    from .models import ChannelKind

    return list(ChannelKind.choices)


def user_team_ids(user: Any) -> list[int]:
    return list(user.teams.values_list("id", flat=True))


def can_user_see_group(user: Any, group: str) -> bool:
    """May `user`'s socket join the live-update group `group`? (the inbox consumer asks)"""
    if not has_perm(user, "conversations.view"):
        return False
    if group == "conversations.all":
        return has_perm(user, "conversations.view_all")
    if group == "conversations.unteamed":
        return True
    if group == f"user.{user.pk}":
        return True
    if group.startswith("conversations.team."):
        tail = group.rsplit(".", 1)[-1]
        return tail.isdigit() and (
            has_perm(user, "conversations.view_all") or user.teams.filter(pk=int(tail)).exists()
        )
    return False


def neighbours(user: Any, conversation: Conversation) -> dict[str, int | None]:
    """The next (older) and previous (newer) conversation in the default inbox order among the ones
    with the same status, for the j/k shortcuts: two single-row index probes."""
    from django.db.models import F

    # the same team's queue: walks the (team, status, -last_message_at) index
    base = (
        conversations_for_user(user)
        .filter(status=conversation.status, team_id=conversation.team_id)
        .exclude(pk=conversation.pk)
    )
    ts = conversation.last_message_at
    if ts is None:
        older = base.filter(last_message_at__isnull=True, id__lt=conversation.pk).order_by("-id")
        newer = base.filter(Q(last_message_at__isnull=False) | Q(id__gt=conversation.pk)).order_by(
            F("last_message_at").asc(nulls_first=False), "id"
        )
    else:
        older = base.filter(
            Q(last_message_at__lt=ts) | Q(last_message_at=ts, id__lt=conversation.pk)
        ).order_by("-last_message_at", "-id")
        newer = base.filter(
            Q(last_message_at__gt=ts) | Q(last_message_at=ts, id__gt=conversation.pk)
        ).order_by("last_message_at", "id")
    return {
        "next": older.values_list("id", flat=True).first(),
        "prev": newer.values_list("id", flat=True).first(),
    }


def latest_inbound_text(conversation: Conversation) -> str:
    """The customer's latest words (for knowledge-base suggestions)."""
    text = (
        Message.objects.filter(conversation=conversation, direction="in")
        .order_by("-created_at", "-id")
        .values_list("body_text", flat=True)
        .first()
    )
    return ((text or "") + " " + (conversation.subject or "")).strip()[:2000]
