"""Service desk: tickets (cases) with comments, activity and custom fields; SLA policies and
business calendars; return requests on order lines; CSAT and NPS answers."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ecrm.commerce.models import Order, Return
from ecrm.conversations.models import Conversation
from ecrm.core.models import Team
from ecrm.customers.models import AttributeType, Customer


class TicketType(models.TextChoices):
    QUESTION = "question", _("Question")
    COMPLAINT = "complaint", _("Complaint")
    RETURN_REFUND = "return_refund", _("Return / refund")
    DELIVERY_PROBLEM = "delivery_problem", _("Delivery problem")
    TECHNICAL = "technical", _("Technical")


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


PRIORITY_ORDER = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]


class TicketStatus(models.TextChoices):
    NEW = "new", _("New")
    OPEN = "open", _("Open")
    PENDING = "pending", _("Waiting on customer")
    ON_HOLD = "on_hold", _("On hold")
    SOLVED = "solved", _("Solved")
    CLOSED = "closed", _("Closed")


OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.ON_HOLD)
DONE_STATUSES = (TicketStatus.SOLVED, TicketStatus.CLOSED)


class TicketSource(models.TextChoices):
    CONSOLE = "console", _("Console")
    CONVERSATION = "conversation", _("Conversation")
    API = "api", _("API")
    PORTAL = "portal", _("Customer portal")
    SYSTEM = "system", _("System")


class TicketTag(models.Model):
    """A label on tickets ("refund-delay", "fragile")."""

    name = models.CharField(_("name"), max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BusinessCalendar(models.Model):
    """A team's working hours (per weekday, in its time zone), holidays and make-up working days."""

    name = models.CharField(_("name"), max_length=100)
    timezone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai")
    # {"0": [["09:00", "18:00"]], ..., "6": []}: Monday = "0", as datetime.weekday()
    weekly_hours = models.JSONField(_("weekly hours"), default=dict)
    # The calendar used by teams without their own (and by tickets without a team).
    is_default = models.BooleanField(_("default calendar"), default=False)
    teams = models.ManyToManyField(
        Team, blank=True, related_name="service_calendars", verbose_name=_("teams")
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CalendarDayKind(models.TextChoices):
    HOLIDAY = "holiday", _("Holiday (no work)")
    WORKDAY = "workday", _("Make-up working day")


class CalendarDay(models.Model):
    """An exception to the weekly hours: a holiday, or a make-up working day (China moves weekends)."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="days")
    date = models.DateField(_("date"))
    kind = models.CharField(max_length=8, choices=CalendarDayKind.choices)
    name = models.CharField(_("name"), max_length=100, blank=True)
    # A make-up day's hours; empty = the hours of a normal Monday.
    hours = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="calendar_day_unique")]

    def __str__(self) -> str:
        return f"{self.date} {self.kind}"


class CustomerTier(models.TextChoices):
    STANDARD = "standard", _("Standard")
    VIP = "vip", _("VIP")


class SlaPolicy(models.Model):
    """Targets in business minutes for tickets of a priority and customer tier (blank = any)."""

    name = models.CharField(_("name"), max_length=100)
    priority = models.CharField(_("priority"), max_length=8, choices=Priority.choices, blank=True)
    tier = models.CharField(_("customer tier"), max_length=8, choices=CustomerTier.choices, blank=True)
    first_response_minutes = models.PositiveIntegerField(_("first response (business minutes)"))
    resolution_minutes = models.PositiveIntegerField(_("resolution (business minutes)"))
    warn_percent = models.PositiveSmallIntegerField(_("warn at (percent of target)"), default=80)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Ticket(models.Model):
    """A customer's case, worked by a team under an SLA; numbered T-1001, T-1002..."""

    number = models.PositiveIntegerField(unique=True, null=True, editable=False)
    subject = models.CharField(_("subject"), max_length=300)
    description = models.TextField(_("description"), blank=True)
    type = models.CharField(_("type"), max_length=20, choices=TicketType.choices, default=TicketType.QUESTION)
    priority = models.CharField(
        _("priority"), max_length=8, choices=Priority.choices, default=Priority.NORMAL
    )
    status = models.CharField(
        _("status"), max_length=8, choices=TicketStatus.choices, default=TicketStatus.NEW
    )
    source = models.CharField(max_length=16, choices=TicketSource.choices, default=TicketSource.CONSOLE)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tickets")
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    conversations = models.ManyToManyField(Conversation, blank=True, related_name="tickets")
    tags = models.ManyToManyField(TicketTag, blank=True, related_name="tickets")
    watchers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="watched_tickets")
    custom_fields = models.JSONField(_("custom fields"), default=dict, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    solved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # SLA clock (see sla/engine.py): due times and warning times computed in business minutes.
    sla_policy = models.ForeignKey(
        SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_response_at = models.DateTimeField(null=True, blank=True)
    first_response_due = models.DateTimeField(null=True, blank=True)
    first_response_warn_at = models.DateTimeField(null=True, blank=True)
    resolution_due = models.DateTimeField(null=True, blank=True)
    resolution_warn_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)  # waiting on the customer since
    paused_minutes = models.FloatField(default=0)  # business minutes spent waiting on the customer
    first_response_breached = models.BooleanField(default=False)
    resolution_breached = models.BooleanField(default=False)

    class Meta:
        indexes = [
            # list views: newest activity first, scoped by team / assignee / status
            models.Index(fields=["status", "-updated_at", "-id"], name="ticket_status_recent"),
            models.Index(fields=["team", "status", "-updated_at"], name="ticket_team_status"),
            models.Index(fields=["assignee", "status", "-updated_at"], name="ticket_assignee_status"),
            models.Index(fields=["customer", "-created_at"], name="ticket_customer_recent"),
            models.Index(fields=["-updated_at", "-id"], name="ticket_recent"),
            models.Index(fields=["first_response_warn_at"], name="ticket_fr_warn"),
            models.Index(fields=["resolution_warn_at"], name="ticket_res_warn"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.subject}"

    @property
    def reference(self) -> str:
        return f"T-{self.number}" if self.number else "T-?"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def can_reopen(self) -> bool:
        return self.status == TicketStatus.SOLVED and self.merged_into_id is None


class TicketComment(models.Model):
    """A message on a ticket: public (the customer sees it in the portal) or an internal note.
    Written by an agent (`author`) or by the customer (`customer`, from the portal)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField()
    is_public = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="ticket_comment_time")]

    def __str__(self) -> str:
        return f"comment #{self.pk} on ticket {self.ticket_id}"

    @property
    def direction(self) -> str:
        """Same words as conversation messages: "in" from the customer, "out" to them, "note"."""
        if self.customer_id and not self.author_id:
            return "in"
        return "out" if self.is_public else "note"

    @property
    def body_text(self) -> str:
        return self.body


class TicketActivity(models.Model):
    """One line of a ticket's activity log (created, status changed, SLA warning, merged...).
    `key` makes one-off events (an SLA warning or breach) fire exactly once."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="activity")
    at = models.DateTimeField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=40)
    data = models.JSONField(default=dict, blank=True)
    key = models.CharField(max_length=60, null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [models.UniqueConstraint(fields=["ticket", "key"], name="ticket_activity_once")]
        indexes = [models.Index(fields=["ticket", "at"], name="ticket_activity_time")]

    def __str__(self) -> str:
        return f"{self.kind} on ticket {self.ticket_id}"


class TicketFieldDefinition(models.Model):
    """An admin-defined, typed ticket field stored in `Ticket.custom_fields[key]` (same types as
    customers' custom attributes, validated by the same coercion)."""

    key = models.SlugField(max_length=64, unique=True)
    label = models.CharField(max_length=100)
    type = models.CharField(max_length=8, choices=AttributeType.choices)
    choices = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class ReturnRequest(models.Model):
    """The service side of a commerce `Return`: who asked, from where, and the ticket working it.
    Quantity, status and refund amount live on the commerce Return (one source of truth)."""

    return_record = models.OneToOneField(Return, on_delete=models.CASCADE, related_name="service_request")
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="returns"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="return_requests")
    source = models.CharField(max_length=16, choices=TicketSource.choices, default=TicketSource.CONSOLE)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"return request #{self.pk}"

    # read-through to the commerce Return
    @property
    def status(self) -> str:
        return self.return_record.status

    @property
    def quantity(self):
        return self.return_record.quantity

    @property
    def order_line(self):
        return self.return_record.order_line

    @property
    def refund_amount(self):
        return self.return_record.refund_amount


class SurveyKind(models.TextChoices):
    CSAT = "csat", _("CSAT (1–5)")
    NPS = "nps", _("NPS (0–10)")


class NpsCampaign(models.Model):
    """One NPS send by marketing to a list of customers (a tag or a list of ids)."""

    name = models.CharField(_("name"), max_length=120)
    audience = models.CharField(max_length=300, blank=True)  # "tag:vip" or "ids:12"
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class SurveyResponse(models.Model):
    """A survey sent to a customer and (once answered) their score; the signed link points here.
    A CSAT survey is one per ticket; the answer can be changed within 7 days of the first answer.
    (No unique (campaign, customer): a send lists each customer once by construction, and a customer
    merge must be able to move both customers' answers to one survivor.)"""

    kind = models.CharField(max_length=4, choices=SurveyKind.choices)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="survey_responses")
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="surveys"
    )
    campaign = models.ForeignKey(
        NpsCampaign, null=True, blank=True, on_delete=models.CASCADE, related_name="responses"
    )
    # the ticket's team and assignee when it was solved: the agent and team reports group by these
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)
    sent_at = models.DateTimeField()
    mailed_at = models.DateTimeField(null=True, blank=True)  # set when the mail went out (once)
    answered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"], condition=models.Q(kind="csat"), name="survey_one_csat_per_ticket"
            ),
        ]
        indexes = [models.Index(fields=["customer", "-sent_at"], name="survey_customer_recent")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"

    @property
    def max_score(self) -> int:
        return 5 if self.kind == SurveyKind.CSAT else 10


from .flows.models import (  # noqa: E402, F401  (ticket flows live in their own package)
    FlowStage,
    FlowTransition,
    TicketFlow,
    TicketFlowState,
    TicketFlowStep,
)
