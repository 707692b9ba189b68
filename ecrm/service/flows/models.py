"""Models of ticket flows: the machine (stages, transitions), each ticket's place in it, and the
history of its steps. Imported by ecrm/service/models.py so they belong to the `service` app."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ecrm.core.models import Team


class TicketFlow(models.Model):
    """A state machine for one ticket type; at most one active flow per type."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    ticket_type = models.CharField(_("ticket type"), max_length=20)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    # Stage SLAs count business minutes on the owning team's calendar (else wall-clock minutes).
    business_hours = models.BooleanField(_("stage SLAs in business hours"), default=True)
    # +1 on every saved edit; a ticket's state records the version it last moved under.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket_type"],
                condition=models.Q(is_active=True),
                name="ticket_flow_one_active_per_type",
            )
        ]

    def __str__(self) -> str:
        return self.name


class FlowStage(models.Model):
    """A step of a flow, owned by a team with its own SLA; entering it sets the ticket's status."""

    flow = models.ForeignKey(TicketFlow, on_delete=models.CASCADE, related_name="stages")
    key = models.SlugField(_("key"), max_length=40)
    label = models.CharField(_("label"), max_length=100)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    sla_minutes = models.PositiveIntegerField(_("stage SLA (minutes)"), null=True, blank=True)
    status = models.CharField(_("ticket status"), max_length=8, blank=True)
    is_initial = models.BooleanField(_("initial"), default=False)
    is_final = models.BooleanField(_("final"), default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["flow", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["flow", "key"], name="flow_stage_key_unique")]

    def __str__(self) -> str:
        return self.label


class FlowTransition(models.Model):
    """An allowed step from one stage to another. Empty `roles`/`teams` = anyone who may edit tickets."""

    flow = models.ForeignKey(TicketFlow, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.ForeignKey(FlowStage, on_delete=models.CASCADE, related_name="transitions_out")
    to_stage = models.ForeignKey(FlowStage, on_delete=models.CASCADE, related_name="transitions_in")
    label = models.CharField(_("label"), max_length=100)
    roles = models.JSONField(default=list, blank=True)  # ["agent", "manager"]
    teams = models.ManyToManyField(Team, blank=True, related_name="+")
    # "note" = the step needs a note; any other key = a ticket custom field that must be set
    required_fields = models.JSONField(default=list, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["flow", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["from_stage", "to_stage"], name="flow_transition_unique")
        ]

    def __str__(self) -> str:
        return self.label


class TicketFlowState(models.Model):
    """Where a ticket is in its flow: the stage, since when, and when the stage's SLA is due."""

    ticket = models.OneToOneField("service.Ticket", on_delete=models.CASCADE, related_name="flow_state")
    flow = models.ForeignKey(TicketFlow, on_delete=models.PROTECT, related_name="states")
    stage = models.ForeignKey(FlowStage, on_delete=models.PROTECT, related_name="states")
    flow_version = models.PositiveIntegerField(default=1)
    entered_at = models.DateTimeField()
    due_at = models.DateTimeField(null=True, blank=True)
    warned = models.BooleanField(default=False)  # WARN_SHARE of the stage's time had passed
    breached = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["breached", "due_at"], name="flow_state_due")]

    def __str__(self) -> str:
        return f"ticket {self.ticket_id} at {self.stage_id}"


class TicketFlowStep(models.Model):
    """One step of a ticket through its flow. Keys and labels are copied so history outlives edits."""

    ticket = models.ForeignKey("service.Ticket", on_delete=models.CASCADE, related_name="flow_steps")
    flow = models.ForeignKey(TicketFlow, on_delete=models.CASCADE, related_name="+")
    from_key = models.CharField(max_length=40, blank=True)  # "" = entered the flow
    from_label = models.CharField(max_length=100, blank=True)
    to_key = models.CharField(max_length=40)
    to_label = models.CharField(max_length=100)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.TextField(blank=True)
    at = models.DateTimeField()
    seconds_in_stage = models.FloatField(null=True, blank=True)  # in the stage left (None on entry)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["ticket", "at"], name="flow_step_ticket_time")]

    def __str__(self) -> str:
        return f"{self.from_key or '∅'} -> {self.to_key}"

    @property
    def minutes_in_stage(self) -> int | None:
        return None if self.seconds_in_stage is None else round(self.seconds_in_stage / 60)
