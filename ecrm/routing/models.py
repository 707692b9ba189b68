"""Routing: who is available for what (profiles, skills, capacity, presence), what waits (queues and
work items), and who got what and why (assignments with their explanation)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrm.core.models import Team

# Channels capacity is counted on: a conversation's channel maps onto one of these.
CAPACITY_CHANNELS = ("chat", "email", "phone", "ticket")
DEFAULT_CAPACITY = {"chat": 3, "email": 10, "phone": 1, "ticket": 10}
SKILL_PREFIXES = ("lang", "cat", "channel", "type")


class Presence(models.TextChoices):
    ONLINE = "online", _("Online")
    AWAY = "away", _("Away")
    OFFLINE = "offline", _("Offline")


class AgentProfile(models.Model):
    """An agent's routing profile: presence, skills with levels 1..5 and capacity per channel."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="routing_profile"
    )
    presence = models.CharField(
        _("presence"), max_length=8, choices=Presence.choices, default=Presence.OFFLINE
    )
    presence_changed_at = models.DateTimeField(default=timezone.now)
    # who set it: "self", "manager", "api", or "idle" (the tick; activity brings an idle agent back)
    presence_source = models.CharField(max_length=8, default="self")
    last_activity_at = models.DateTimeField(null=True, blank=True)
    # {"lang:zh": 5, "cat:tea": 3, "type:complaint": 4, "channel:chat": 2}
    skills = models.JSONField(_("skills"), default=dict, blank=True)
    # {"chat": 3, "email": 10, "ticket": 10, "phone": 1}; a channel missing here means 0
    capacity = models.JSONField(_("capacity"), default=dict, blank=True)
    routable = models.BooleanField(_("receives routed work"), default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["presence"], name="routing_profile_presence")]

    def __str__(self) -> str:
        return f"routing profile of {self.user_id}"


class Queue(models.Model):
    """Where work waits: matched by channel and team; priority orders queues, required skills and the
    SLA target apply to every item in it."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    priority = models.IntegerField(_("priority"), default=0, help_text=_("Higher is served first."))
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("team")
    )
    # item channels this queue takes ("chat", "email", "phone", "ticket"); empty = any
    channels = models.JSONField(_("channels"), default=list, blank=True)
    required_skills = models.JSONField(_("required skills"), default=dict, blank=True)
    sla_minutes = models.PositiveIntegerField(_("answer within (minutes)"), default=30)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-priority", "name"]

    def __str__(self) -> str:
        return self.name

    def takes(self, channel: str, team_id: int | None) -> bool:
        if self.channels and channel not in self.channels:
            return False
        return self.team_id is None or self.team_id == team_id


class WorkKind(models.TextChoices):
    CONVERSATION = "conversation", _("Conversation")
    TICKET = "ticket", _("Ticket")
    CALLBACK = "callback", _("Callback request")


class WorkStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    ASSIGNED = "assigned", _("Assigned")
    DONE = "done", _("Done")


class WorkItem(models.Model):
    """A conversation, ticket or callback waiting for (or being handled by) an agent."""

    kind = models.CharField(max_length=16, choices=WorkKind.choices)
    object_id = models.PositiveIntegerField()
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    customer_id = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=WorkStatus.choices, default=WorkStatus.WAITING)
    channel = models.CharField(max_length=16)  # one of CAPACITY_CHANNELS
    subject = models.CharField(max_length=300, blank=True)
    skills = models.JSONField(default=dict, blank=True)  # required: skill -> minimum level
    preferred = models.JSONField(default=dict, blank=True)  # scored, not required
    priority = models.IntegerField(default=0)
    value = models.FloatField(default=0.0)  # 0..1 from the CLV band or a VIP tag
    value_label = models.CharField(max_length=16, blank=True)  # "vip", "top", "high"...
    enqueued_at = models.DateTimeField(default=timezone.now)
    sla_due_at = models.DateTimeField(null=True, blank=True)
    last_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # agents who let it go unanswered; the next solve skips them
    excluded_agents = models.JSONField(default=list, blank=True)
    requeue_count = models.PositiveIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # one open item per conversation/ticket/callback: events may arrive twice
            models.UniqueConstraint(
                fields=["kind", "object_id"], condition=~Q(status="done"), name="routing_one_open_item"
            )
        ]
        indexes = [
            models.Index(fields=["status", "enqueued_at"], name="routing_item_status_age"),
            models.Index(fields=["kind", "object_id"], name="routing_item_object"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id}"


class EndReason(models.TextChoices):
    COMPLETED = "completed", _("Completed")
    OFFLINE = "offline", _("Agent went offline")
    NO_RESPONSE = "no_response", _("No reply in time")
    REASSIGNED = "reassigned", _("Reassigned")


class Assignment(models.Model):
    """One agent holding one work item, with the score and the deciding factors of that choice."""

    work_item = models.ForeignKey(WorkItem, on_delete=models.CASCADE, related_name="assignments")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=16)  # copied from the item: load counts by it
    policy = models.CharField(max_length=16)  # optimal | round_robin | least_loaded | manual
    score = models.FloatField(default=0.0)
    factors = models.JSONField(default=dict, blank=True)  # weighted contribution per factor
    reasons = models.JSONField(default=list, blank=True)  # the engine's plain-English fragments
    details = models.JSONField(default=dict, blank=True)  # facts the explanation is rendered from
    assigned_at = models.DateTimeField(default=timezone.now)
    responded_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=12, choices=EndReason.choices, blank=True)

    class Meta:
        constraints = [
            # the invariant failover and concurrent workers must never break
            models.UniqueConstraint(
                fields=["work_item"], condition=Q(ended_at__isnull=True), name="routing_one_active_assignment"
            )
        ]
        indexes = [
            models.Index(fields=["agent", "ended_at"], name="routing_asg_agent_active"),
            models.Index(fields=["ended_at", "responded_at", "assigned_at"], name="routing_asg_unanswered"),
        ]

    def __str__(self) -> str:
        return f"{self.work_item} -> {self.agent_id}"

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


class Policy(models.TextChoices):
    OPTIMAL = "optimal", _("Optimal (batch assignment)")
    ROUND_ROBIN = "round_robin", _("Round-robin")
    LEAST_LOADED = "least_loaded", _("Least loaded")


class RoutingSettings(models.Model):
    """The one row of routing settings; route_once locks it so only one worker solves at a time."""

    policy = models.CharField(_("policy"), max_length=16, choices=Policy.choices, default=Policy.OPTIMAL)
    weight_skill = models.FloatField(_("skill match"), default=3.0)
    weight_load = models.FloatField(_("free capacity"), default=1.0)
    weight_urgency = models.FloatField(_("SLA urgency"), default=2.0)
    weight_value = models.FloatField(_("customer value"), default=1.0)
    weight_affinity = models.FloatField(_("affinity (last agent)"), default=1.0)
    weight_wait = models.FloatField(_("time waiting"), default=1.0)
    weight_priority = models.FloatField(_("queue priority"), default=1.0)
    no_response_minutes = models.PositiveIntegerField(
        _("requeue when unanswered after (minutes)"), default=10
    )
    idle_away_minutes = models.PositiveIntegerField(_("idle to away after (minutes)"), default=15)
    idle_offline_minutes = models.PositiveIntegerField(_("idle to offline after (minutes)"), default=60)
    enabled = models.BooleanField(_("routing on"), default=True)
    state = models.JSONField(
        default=dict, blank=True
    )  # the engine's state between solves (round-robin cursor)
    last_solve_at = models.DateTimeField(null=True, blank=True)
    last_solve_ms = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "routing settings"

    def __str__(self) -> str:
        return "routing settings"

    WEIGHT_FIELDS = ("skill", "load", "urgency", "value", "affinity", "wait", "priority")

    def weights_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, f"weight_{name}")) for name in self.WEIGHT_FIELDS}
