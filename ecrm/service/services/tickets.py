"""Writes on tickets: create (console, conversation, API, portal), update fields and status, comment,
customer replies, link conversations, merge duplicates. Every change is a `TicketActivity` line and
an audit entry; the SLA clock is kept in step here (see sla/engine.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from ecrm.commerce.models import Order
from ecrm.conversations.models import Conversation
from ecrm.core import events
from ecrm.core.audit import record_audit, snapshot
from ecrm.core.exceptions import NotFound, ValidationFailed
from ecrm.core.models import ApiKey, Team, User
from ecrm.core.permissions import check_perm, has_perm
from ecrm.customers.models import Customer
from ecrm.customers.services import coerce_attribute

from ..models import (
    DONE_STATUSES,
    Priority,
    Ticket,
    TicketActivity,
    TicketComment,
    TicketFieldDefinition,
    TicketSource,
    TicketStatus,
    TicketTag,
    TicketType,
)
from ..sla import engine

NUMBER_OFFSET = 1000  # T-1001 is the first ticket: numbers look like case numbers, not row ids
MAX_BODY = 20_000


def _check_staff(actor: Any, capability: str = "service.edit") -> None:
    """None = the customer/portal/system; an API key is authorised by its scope in the API layer."""
    if actor is None or isinstance(actor, ApiKey):
        return
    check_perm(actor, capability)


def _user(actor: Any) -> User | None:
    return actor if isinstance(actor, User) else None


def check_ticket_visible(actor: Any, ticket: Ticket) -> None:
    """Agents act only on their teams' tickets (or unteamed, or assigned to them); 404 otherwise."""
    if not isinstance(actor, User) or has_perm(actor, "conversations.view_all"):
        return
    if ticket.team_id is None or ticket.assignee_id == actor.pk:
        return
    if not actor.teams.filter(pk=ticket.team_id).exists():
        raise NotFound("No such ticket.")


def log(
    ticket: Ticket, kind: str, actor: Any = None, *, key: str | None = None, **data: Any
) -> TicketActivity:
    return TicketActivity.objects.create(
        ticket=ticket, at=timezone.now(), actor=_user(actor), kind=kind, data=data, key=key
    )


def _clean_choice(value: Any, choices: type, field: str, errors: dict[str, str]) -> str:
    if value not in choices.values:
        errors[field] = f"Must be one of {', '.join(choices.values)}."
    return value


def clean_custom_fields(values: dict[str, Any] | None, *, keep_empty: bool = False) -> dict[str, Any]:
    """Typed values by key; an empty value is dropped (or, with keep_empty, kept as None = clear)."""
    if not values:
        return {}
    if not isinstance(values, dict):
        raise ValidationFailed(
            "Custom fields must be an object.", fields={"custom_fields": "must be an object"}
        )
    definitions = {d.key: d for d in TicketFieldDefinition.objects.filter(key__in=list(values))}
    out, errors = {}, {}
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is None:
            errors[f"custom_fields.{key}"] = "not a defined ticket field"
            continue
        try:
            coerced = coerce_attribute(definition, value)
        except ValueError as exc:
            errors[f"custom_fields.{key}"] = str(exc)
            continue
        if coerced is not None or keep_empty:
            out[key] = coerced
    if errors:
        raise ValidationFailed("A custom field is not valid.", fields=errors)
    return out


def _check_team_and_assignee(
    actor: Any, team: Team | None, assignee: User | None, errors: dict, *, check_team: bool = True
) -> None:
    from ecrm.conversations.selectors import can_work_on

    user = _user(actor)
    if check_team and team is not None and user is not None and not has_perm(user, "conversations.view_all"):
        if not user.teams.filter(pk=team.pk).exists():
            errors["team"] = "You can only give tickets to your own teams."
    if assignee is not None and not can_work_on(assignee, team):
        errors["assignee"] = "This person cannot work on tickets of that team."


def _tags(names: list[str] | None) -> list[TicketTag]:
    clean = sorted({n.strip().lower()[:64] for n in (names or []) if n and n.strip()})
    existing = {t.name: t for t in TicketTag.objects.filter(name__in=clean)}
    for name in clean:
        if name not in existing:
            existing[name], _ = TicketTag.objects.get_or_create(name=name)
    return [existing[n] for n in clean]


def do_create_ticket(
    *,
    actor: Any,
    customer: Customer,
    subject: str,
    body: str = "",
    type: str = TicketType.QUESTION,
    priority: str = Priority.NORMAL,
    conversation: Conversation | None = None,
    order: Order | None = None,
    source: str = TicketSource.CONSOLE,
    team: Team | None = None,
    assignee: User | None = None,
    tags: list[str] | None = None,
    custom_fields: dict[str, Any] | None = None,
) -> Ticket:
    """Open a ticket. `actor` None = the customer (portal) or the system. The team defaults to the
    conversation's team; the SLA clock starts now."""
    _check_staff(actor)
    if conversation is not None and isinstance(actor, User):
        from ecrm.conversations.selectors import check_conversation_visible

        check_conversation_visible(actor, conversation)
    subject = (subject or "").strip()
    body = (body or "").strip()
    errors: dict[str, str] = {}
    if not subject:
        errors["subject"] = "This field is required."
    elif len(subject) > 300:
        errors["subject"] = "At most 300 characters."
    if len(body) > MAX_BODY:
        errors["body"] = f"At most {MAX_BODY} characters."
    _clean_choice(type, TicketType, "type", errors)
    _clean_choice(priority, Priority, "priority", errors)
    _clean_choice(source, TicketSource, "source", errors)
    if order is not None and order.customer_id != customer.pk:
        errors["order"] = "This order belongs to another customer."
    if conversation is not None and conversation.customer_id != customer.pk:
        errors["conversation"] = "This conversation is with another customer."
    if team is None and conversation is not None:
        team = conversation.team
    _check_team_and_assignee(actor, team, assignee, errors)
    if errors:
        raise ValidationFailed("The ticket is not valid.", fields=errors)
    fields = clean_custom_fields(custom_fields)
    now = timezone.now()
    with transaction.atomic():
        ticket = Ticket(
            subject=subject,
            description=body,
            type=type,
            priority=priority,
            status=TicketStatus.OPEN if assignee else TicketStatus.NEW,
            source=source,
            team=team,
            assignee=assignee,
            customer=customer,
            order=order,
            custom_fields=fields,
            created_by=_user(actor),
            created_at=now,
            updated_at=now,
        )
        engine.apply_policy(ticket)
        ticket.save()
        # the number follows the row id, so concurrent creates never collide
        ticket.number = NUMBER_OFFSET + ticket.pk
        Ticket.objects.filter(pk=ticket.pk).update(number=ticket.number)
        if conversation is not None:
            ticket.conversations.add(conversation)
        if tags:
            ticket.tags.set(_tags(tags))
        if isinstance(actor, User):
            ticket.watchers.add(actor)
        log(ticket, "created", actor, source=source, conversation=conversation.pk if conversation else None)
        from ..flows.services import enter_initial_stage  # a type with a flow starts in its first stage

        flow_entry = enter_initial_stage(ticket, actor)
        after = snapshot(ticket)
        record_audit(actor=actor, action="ticket.create", obj=ticket, after=after)
        events.emit(
            "ticket.created",
            subject_type="ticket",
            subject_id=ticket.pk,
            data={"fields": events.changes({}, after), "tags": sorted(tags or [])},
            actor=_user(actor),
        )
        if flow_entry is not None:
            flow_entry.emit()
    return ticket


EDITABLE = ("subject", "type", "priority", "status", "team", "assignee", "order", "custom_fields", "tags")


def do_update_ticket(*, ticket: Ticket, actor: Any, changes: dict[str, Any]) -> Ticket:
    """Change any of EDITABLE (team/assignee/order as objects or None, tags as names). Priority and
    team changes recompute the SLA targets; status changes pause or resume the resolution clock."""
    _check_staff(actor)
    check_ticket_visible(actor, ticket)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields={k: "cannot be changed" for k in sorted(unknown)})
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("sla_policy", "customer")
            .get(pk=ticket.pk)
        )
        if ticket.merged_into_id:
            raise ValidationFailed(
                f"This ticket was merged into T-{ticket.merged_into.number}.", code="merged"
            )
        before = snapshot(ticket)
        old_tags = sorted(ticket.tags.values_list("name", flat=True))
        errors: dict[str, str] = {}
        flow_errors = _flow_owned_fields(ticket, changes)
        if "subject" in changes:
            subject = (changes["subject"] or "").strip()
            if not subject or len(subject) > 300:
                errors["subject"] = "Between 1 and 300 characters."
            ticket.subject = subject
        if "type" in changes:
            ticket.type = _clean_choice(changes["type"], TicketType, "type", errors)
        if "priority" in changes:
            ticket.priority = _clean_choice(changes["priority"], Priority, "priority", errors)
        old_status = ticket.status
        if "status" in changes:
            status = _clean_choice(changes["status"], TicketStatus, "status", errors)
            if old_status == TicketStatus.CLOSED and status != TicketStatus.CLOSED:
                errors["status"] = "A closed ticket cannot be reopened; open a new one."
            ticket.status = status
        if "team" in changes:
            ticket.team = changes["team"]
        if "assignee" in changes:
            ticket.assignee = changes["assignee"]
        if "team" in changes or "assignee" in changes:
            _check_team_and_assignee(
                actor, ticket.team, ticket.assignee, errors, check_team="team" in changes
            )
        if "order" in changes:
            order = changes["order"]
            if order is not None and order.customer_id != ticket.customer_id:
                errors["order"] = "This order belongs to another customer."
            ticket.order = order
        if "custom_fields" in changes:
            merged = {
                **ticket.custom_fields,
                **clean_custom_fields(changes["custom_fields"], keep_empty=True),
            }
            ticket.custom_fields = {k: v for k, v in merged.items() if v is not None}
        errors.update(flow_errors)  # the flow's reason says what to do instead
        if errors:
            raise ValidationFailed("The change is not valid.", fields=errors)
        now = timezone.now()
        if ticket.status != old_status:
            _status_side_effects(ticket, old_status, now)
        if ticket.assignee_id and ticket.status == TicketStatus.NEW:
            ticket.status = TicketStatus.OPEN
        if before["priority"] != ticket.priority or before["team_id"] != ticket.team_id:
            engine.apply_policy(ticket)
        ticket.updated_at = now
        ticket.save()
        if "tags" in changes:
            ticket.tags.set(_tags(changes["tags"]))
        after = snapshot(ticket)
        new_tags = sorted(ticket.tags.values_list("name", flat=True))
        changed = {k: [before[k], after[k]] for k in after if before[k] != after[k] and k != "updated_at"}
        if old_tags != new_tags:
            changed["tags"] = [old_tags, new_tags]
        if changed:
            log(ticket, "updated", actor, changes=changed)
            record_audit(actor=actor, action="ticket.update", obj=ticket, before=before, after=after)
            data = {"changes": events.plain(changed)}
            events.emit(
                "ticket.updated", subject_type="ticket", subject_id=ticket.pk, data=data, actor=_user(actor)
            )
            if "status" in changed:
                events.emit(
                    "ticket.status_changed",
                    subject_type="ticket",
                    subject_id=ticket.pk,
                    data={"changes": {"status": events.plain(changed["status"])}},
                    actor=_user(actor),
                )
        if ticket.status == TicketStatus.SOLVED and old_status != TicketStatus.SOLVED:
            from .surveys import schedule_csat

            schedule_csat(ticket)
    return ticket


FLOW_OWNED = ("status", "team", "type")


def _flow_owned_fields(ticket: Ticket, changes: dict[str, Any]) -> dict[str, str]:
    """A ticket on its way through a flow moves by the flow's steps: its status and team follow the
    stage, and its type chose the flow. Changing them by hand is refused (with where to go instead)
    until the ticket reaches a final stage; an unchanged value passes (forms resend every field)."""
    current = {"status": ticket.status, "team": ticket.team_id, "type": ticket.type}
    wanted = {k: getattr(changes[k], "pk", changes[k]) for k in FLOW_OWNED if k in changes}
    touched = [k for k, v in wanted.items() if v != current[k]]
    if not touched:
        return {}
    from ..flows.models import TicketFlowState

    state = TicketFlowState.objects.select_related("stage", "flow").filter(ticket=ticket).first()
    if state is None or state.stage.is_final:
        return {}
    message = (
        f"This ticket follows the {state.flow.name} flow (now at {state.stage.label}): "
        "use the flow's next steps to change it."
    )
    return {k: message for k in touched}


def _status_side_effects(ticket: Ticket, old_status: str, now) -> None:
    if ticket.status == TicketStatus.SOLVED:
        ticket.solved_at = now
    elif ticket.status == TicketStatus.CLOSED:
        ticket.closed_at = now
        ticket.solved_at = ticket.solved_at or now
    elif old_status in DONE_STATUSES:
        ticket.solved_at = None  # reopened
    engine.on_status_change(ticket, old_status, now)


def do_set_ticket_status(*, ticket: Ticket, actor: Any, status: str) -> Ticket:
    return do_update_ticket(ticket=ticket, actor=actor, changes={"status": status})


def _mark_first_response(ticket: Ticket, at) -> None:
    if ticket.first_response_at is None:
        ticket.first_response_at = at
        Ticket.objects.filter(pk=ticket.pk, first_response_at__isnull=True).update(first_response_at=at)
        log(ticket, "sla.first_response", None, key="first_response", met=engine.first_response_met(ticket))


def do_add_comment(*, ticket: Ticket, actor: User, body: str, public: bool = True) -> TicketComment:
    """An agent's comment. A public one is the answer to the customer: it meets the first-response
    target, goes out in the linked conversation's channel (or by email), and opens a new ticket."""
    check_perm(actor, "service.edit")
    check_ticket_visible(actor, ticket)
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("Write a comment first.", fields={"body": "required"})
    if len(body) > MAX_BODY:
        raise ValidationFailed("The comment is too long.", fields={"body": f"at most {MAX_BODY} characters"})
    now = timezone.now()
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if ticket.merged_into_id:
            raise ValidationFailed("This ticket was merged; comment on the ticket it was merged into.")
        comment = TicketComment.objects.create(
            ticket=ticket, author=actor, body=body, is_public=public, created_at=now
        )
        updates = ["updated_at"]
        ticket.updated_at = now
        if public:
            _mark_first_response(ticket, now)
            if ticket.status == TicketStatus.NEW:
                ticket.status = TicketStatus.OPEN
                updates.append("status")
            if ticket.assignee_id is None:
                ticket.assignee = actor  # who answers an unassigned ticket owns it
                updates.append("assignee")
        ticket.save(update_fields=updates)
        log(ticket, "comment", actor, comment=comment.pk, public=public)
        record_audit(
            actor=actor, action="ticket.comment", obj=ticket, after={"comment": comment.pk, "public": public}
        )
        if public:
            _deliver_public_comment(ticket, comment, actor)
        events.emit(
            "ticket.comment_added",
            subject_type="ticket",
            subject_id=ticket.pk,
            data={"comment": comment.pk, "public": public, "author": actor.pk, "by_customer": False},
            actor=actor,
        )
    return comment


def _deliver_public_comment(ticket: Ticket, comment: TicketComment, actor: User) -> None:
    from ecrm.conversations.selectors import can_see_conversation
    from ecrm.conversations.services import do_send_reply

    conversation = ticket.conversations.order_by("-last_message_at", "-id").first()
    if conversation is not None and can_see_conversation(actor, conversation):
        do_send_reply(
            conversation=conversation, actor=actor, body_text=comment.body, metadata={"ticket": ticket.pk}
        )
        return
    email = ticket.customer.email
    if email:
        subject = f"[{ticket.reference}] {ticket.subject}"
        text = comment.body
        transaction.on_commit(
            lambda: send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, [email], fail_silently=False)
        )


def do_customer_reply(*, ticket: Ticket, customer: Customer, body: str) -> TicketComment:
    """The customer writes on their ticket (portal). Reopens a pending or solved ticket (resuming the
    SLA clock). Another customer's ticket is 'not found'."""
    if ticket.customer_id != customer.pk:
        raise NotFound("No such ticket.")
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("Write a message first.", fields={"body": "required"})
    if len(body) > MAX_BODY:
        raise ValidationFailed("The message is too long.", fields={"body": f"at most {MAX_BODY} characters"})
    now = timezone.now()
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(of=("self",)).select_related("sla_policy").get(pk=ticket.pk)
        if ticket.merged_into_id:
            # the customer answers on a duplicate that was merged: the answer belongs to the survivor
            # (same customer by the merge rule), which may itself have been merged later
            seen = {ticket.pk}
            while ticket.merged_into_id and ticket.merged_into_id not in seen:
                seen.add(ticket.merged_into_id)
                ticket = (
                    Ticket.objects.select_for_update(of=("self",))
                    .select_related("sla_policy")
                    .get(pk=ticket.merged_into_id)
                )
        if ticket.status == TicketStatus.CLOSED:
            raise ValidationFailed("This ticket is closed; please open a new one.", code="ticket_closed")
        comment = TicketComment.objects.create(
            ticket=ticket, customer=customer, body=body, is_public=True, created_at=now
        )
        _customer_activity(ticket, now, comment=comment.pk)
        events.emit(
            "ticket.comment_added",
            subject_type="ticket",
            subject_id=ticket.pk,
            data={"comment": comment.pk, "public": True, "author": None, "by_customer": True},
        )
    return comment


def _customer_activity(ticket: Ticket, now, **data: Any) -> None:
    """The customer wrote (portal or a linked conversation): resume a paused ticket."""
    old_status = ticket.status
    if old_status in (TicketStatus.PENDING, TicketStatus.SOLVED):
        ticket.status = TicketStatus.OPEN
        _status_side_effects(ticket, old_status, now)
    ticket.updated_at = now
    ticket.save()
    log(ticket, "customer_reply", None, status=[old_status, ticket.status], **data)
    if old_status != ticket.status:
        record_audit(
            actor=None, action="ticket.reopen_by_customer", obj=ticket,
            before={"status": old_status}, after={"status": ticket.status},
        )  # fmt: skip
    _notify_people(ticket, "ticket.customer_reply")


def _notify_people(ticket: Ticket, event: str) -> None:
    """A live update to the assignee and the watchers (after commit)."""
    from ecrm.core.consumers import publish

    user_ids = set(ticket.watchers.values_list("id", flat=True))
    if ticket.assignee_id:
        user_ids.add(ticket.assignee_id)
    payload = {"type": event, "ticket": ticket.pk, "number": ticket.reference, "status": ticket.status}
    groups = [f"user.{uid}" for uid in sorted(user_ids)]
    transaction.on_commit(lambda: [publish(group, payload) for group in groups])


def do_set_watching(*, ticket: Ticket, actor: User, watching: bool) -> bool:
    """Follow (or stop following) a ticket: watchers get a live update when the customer writes."""
    check_perm(actor, "service.view")
    check_ticket_visible(actor, ticket)
    with transaction.atomic():
        if watching:
            ticket.watchers.add(actor)
        else:
            ticket.watchers.remove(actor)
        log(ticket, "watching" if watching else "unwatching", actor)
    return watching


def do_link_conversation(*, ticket: Ticket, conversation: Conversation, actor: User) -> Ticket:
    from ecrm.conversations.selectors import check_conversation_visible

    check_perm(actor, "service.edit")
    check_ticket_visible(actor, ticket)
    check_conversation_visible(actor, conversation)
    if conversation.customer_id != ticket.customer_id:
        raise ValidationFailed(
            "That conversation is with another customer.", fields={"conversation": "other customer"}
        )
    with transaction.atomic():
        ticket.conversations.add(conversation)
        log(ticket, "conversation_linked", actor, conversation=conversation.pk)
        record_audit(
            actor=actor,
            action="ticket.link_conversation",
            obj=ticket,
            after={"conversation": conversation.pk},
        )
    return ticket


def do_merge_tickets(*, source: Ticket, target: Ticket, actor: User) -> Ticket:
    """Merge a duplicate `source` into `target`: its conversations, comments, watchers, tags and
    returns move; `source` is closed with a link. Irreversible (and audited with the moved ids)."""
    check_perm(actor, "service.edit")
    check_ticket_visible(actor, source)
    check_ticket_visible(actor, target)
    if source.pk == target.pk:
        raise ValidationFailed("A ticket cannot be merged into itself.", fields={"target": "same ticket"})
    with transaction.atomic():
        pair = {t.pk: t for t in Ticket.objects.select_for_update().filter(pk__in=[source.pk, target.pk])}
        source, target = pair[source.pk], pair[target.pk]
        if source.merged_into_id or target.merged_into_id:
            raise ValidationFailed(
                "One of these tickets was already merged.", fields={"target": "already merged"}
            )
        if target.status == TicketStatus.CLOSED:
            raise ValidationFailed("Merge into an open ticket.", fields={"target": "closed"})
        if source.customer_id != target.customer_id:
            raise ValidationFailed(
                "Only tickets of the same customer can be merged.", fields={"target": "another customer"}
            )
        from ..models import ReturnRequest

        conversation_ids = list(source.conversations.values_list("id", flat=True))
        comment_ids = list(source.comments.values_list("id", flat=True))
        watcher_ids = list(source.watchers.values_list("id", flat=True))
        tag_ids = list(source.tags.values_list("id", flat=True))
        return_ids = list(ReturnRequest.objects.filter(ticket=source).values_list("id", flat=True))
        target.conversations.add(*conversation_ids)
        source.conversations.clear()
        TicketComment.objects.filter(pk__in=comment_ids).update(ticket=target)
        target.watchers.add(*watcher_ids)
        target.tags.add(*tag_ids)
        ReturnRequest.objects.filter(pk__in=return_ids).update(ticket=target)
        now = timezone.now()
        before = snapshot(source)
        old_status = source.status
        source.status, source.merged_into = TicketStatus.CLOSED, target
        _status_side_effects(source, old_status, now)
        source.updated_at = now
        source.save()
        target.updated_at = now
        target.save(update_fields=["updated_at"])
        moved = {
            "conversations": conversation_ids, "comments": comment_ids, "watchers": watcher_ids,
            "tags": tag_ids, "returns": return_ids,
        }  # fmt: skip
        log(source, "merged_into", actor, target=target.pk, number=target.reference)
        log(target, "merged_from", actor, source=source.pk, number=source.reference, moved=moved)
        record_audit(actor=actor, action="ticket.merge", obj=source, before=before,
                     after={**snapshot(source), "moved": moved})  # fmt: skip
    return target


def do_define_ticket_field(*, actor: User, key: str, label: str, type: str, choices: list[str] | None = None):
    """Admins and managers define typed custom ticket fields."""
    import re

    from ecrm.customers.models import AttributeType

    check_perm(actor, "service.configure")
    key, label = (key or "").strip().lower(), (label or "").strip()
    errors = {}
    if not re.match(r"^[a-z][a-z0-9_]{0,63}$", key):
        errors["key"] = "Use lower-case letters, digits and underscores, starting with a letter."
    if not label:
        errors["label"] = "This field is required."
    if type not in AttributeType.values:
        errors["type"] = f"Must be one of {', '.join(AttributeType.values)}."
    clean_choices = [c.strip() for c in (choices or []) if c.strip()]
    if type == AttributeType.CHOICE and not clean_choices:
        errors["choices"] = "A choice field needs at least one choice."
    if errors:
        raise ValidationFailed("The field is not valid.", fields=errors)
    try:
        with transaction.atomic():
            definition = TicketFieldDefinition.objects.create(
                key=key,
                label=label[:100],
                type=type,
                choices=clean_choices if type == AttributeType.CHOICE else [],
            )
            record_audit(
                actor=actor, action="ticket_field.define", obj=definition, after=snapshot(definition)
            )
    except IntegrityError:
        raise ValidationFailed("A field with this key exists.", fields={"key": "already exists"}) from None
    return definition
