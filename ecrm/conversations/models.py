"""Conversations: every message from or to a customer, on any channel, in one thread model."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ecrm.core.models import Team
from ecrm.customers.models import Customer

from .storage import private_storage


class ChannelKind(models.TextChoices):
    EMAIL = "email", _("Email")
    CHAT = "chat", _("Live chat")
    WEBFORM = "webform", _("Web form")
    CALLBACK = "callback", _("Callback request")
    PHONE = "phone", _("Phone")
    SOCIAL = "social", _("Social and messaging")


class Inbox(models.Model):
    """One configured channel instance (a support mailbox, the chat widget, a form...) owned by a team."""

    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("channel"), max_length=16, choices=ChannelKind.choices)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="inboxes", verbose_name=_("team")
    )
    # Validated by the channel adapter's config schema (channels/<kind>/adapter.py), never read raw.
    config = models.JSONField(_("settings"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    auto_assign = models.BooleanField(_("assign round-robin"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "inboxes"

    def __str__(self) -> str:
        return self.name


class ConversationStatus(models.TextChoices):
    OPEN = "open", _("Open")
    PENDING = "pending", _("Waiting on customer")
    RESOLVED = "resolved", _("Resolved")


class Conversation(models.Model):
    """A thread with one customer on one inbox; agents see it if it is on one of their teams."""

    inbox = models.ForeignKey(Inbox, on_delete=models.PROTECT, related_name="conversations")
    channel = models.CharField(_("channel"), max_length=16, choices=ChannelKind.choices)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="conversations")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        _("status"), max_length=16, choices=ConversationStatus.choices, default=ConversationStatus.OPEN
    )
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    # The address/handle/number the customer wrote from, so replies go back the same way.
    contact = models.CharField(_("contact"), max_length=320, blank=True)
    # Channel-specific thread key (chat session id, social thread id, CTI call id...).
    thread_key = models.CharField(max_length=200, blank=True)
    # The tracker's anonymous id of a chat visitor: the agent sees what they viewed.
    visitor_id = models.CharField(max_length=100, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    unread = models.PositiveIntegerField(default=0)  # inbound messages no agent has opened yet
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # inbox views: "by status, newest activity first", scoped by team or assignee
            models.Index(fields=["status", "-last_message_at", "-id"], name="conv_status_recent"),
            models.Index(fields=["team", "status", "-last_message_at"], name="conv_team_status"),
            models.Index(fields=["assignee", "status", "-last_message_at"], name="conv_assignee_status"),
            models.Index(fields=["customer", "-last_message_at"], name="conv_customer_recent"),
            models.Index(fields=["inbox", "thread_key"], name="conv_inbox_thread"),
        ]

    def __str__(self) -> str:
        return self.subject or f"#{self.pk}"


class MessageDirection(models.TextChoices):
    INBOUND = "in", _("From the customer")
    OUTBOUND = "out", _("To the customer")
    NOTE = "note", _("Internal note")


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    READ = "read", _("Read")


class Message(models.Model):
    """One message in a conversation. HTML is sanitised with nh3 before it is stored."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=4, choices=MessageDirection.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sender = models.CharField(max_length=320, blank=True)  # the customer's address/handle/number
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)  # sanitised; shown only in a sandboxed frame
    # The channel's own message id (email Message-ID, social post id...): a resend is stored once.
    external_id = models.CharField(max_length=300, null=True, blank=True)
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED)
    error = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["inbox", "external_id"], name="message_unique_external_id")
        ]
        indexes = [models.Index(fields=["conversation", "created_at"], name="message_conv_time")]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} #{self.pk}"


def attachment_path(instance: Attachment, filename: str) -> str:
    return f"attachments/{instance.message.conversation_id}/{instance.message_id}/{filename}"


class Attachment(models.Model):
    """A file received or sent with a message, stored outside the web root and served only as a download."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=120)
    size = models.PositiveBigIntegerField()
    file = models.FileField(upload_to=attachment_path, max_length=500, storage=private_storage)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.filename


class RoundRobinCursor(models.Model):
    """Whose turn it is next in a team's round-robin assignment."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="+")
    last_user_id = models.IntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"round-robin of team {self.team_id}"


class CannedReply(models.Model):
    """A saved answer with variables ({{ customer.first_name }}, {{ last_order.external_id }})."""

    name = models.CharField(_("name"), max_length=120)
    shortcut = models.SlugField(_("shortcut"), max_length=40, blank=True)
    body = models.TextField(_("text"))
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WebForm(models.Model):
    """A form defined in the console and embedded on the shop; each submission opens a conversation."""

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="forms")
    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("address"), max_length=60, unique=True)
    # [{"name": "email", "label": "Email", "type": "email", "required": true}, ...]
    fields = models.JSONField(_("fields"), default=list)
    success_message = models.CharField(_("thank-you text"), max_length=300, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class CallbackStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    DONE = "done", _("Called back")
    MISSED = "missed", _("No answer")
    CANCELLED = "cancelled", _("Cancelled")


class CallbackRequest(models.Model):
    """A customer asked to be called at a chosen time: a scheduled task for an agent, with a reminder."""

    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="callback")
    phone = models.CharField(_("phone"), max_length=32)
    requested_for = models.DateTimeField(_("call at"), db_index=True)
    status = models.CharField(max_length=12, choices=CallbackStatus.choices, default=CallbackStatus.SCHEDULED)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"callback {self.phone} at {self.requested_for:%Y-%m-%d %H:%M}"


class CallDirection(models.TextChoices):
    INBOUND = "inbound", _("Inbound")
    OUTBOUND = "outbound", _("Outbound")


class CallRecord(models.Model):
    """One phone call reported by the CTI webhook (start, answer, end), matched to a customer."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="calls")
    call_id = models.CharField(max_length=120)
    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="+")
    direction = models.CharField(max_length=10, choices=CallDirection.choices)
    customer_number = models.CharField(max_length=32)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    recording_url = models.URLField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["inbox", "call_id"], name="call_unique_per_inbox")]

    def __str__(self) -> str:
        return f"call {self.call_id}"

    @property
    def duration_seconds(self) -> int | None:
        if self.answered_at and self.ended_at:
            return int((self.ended_at - self.answered_at).total_seconds())
        return None
