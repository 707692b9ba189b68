"""Unified customer profiles: one Customer per person, many Identities, consent, tags, notes,
typed custom attributes, the duplicate review queue and the record of merges (for unmerge)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrm.core.models import TimeStampedModel


class LifecycleStage(models.TextChoices):
    LEAD = "lead", _("Lead")
    PROSPECT = "prospect", _("Prospect")
    CUSTOMER = "customer", _("Customer")
    REPEAT = "repeat", _("Repeat customer")
    VIP = "vip", _("VIP")
    LAPSED = "lapsed", _("Lapsed")
    CHURNED = "churned", _("Churned")


class Gender(models.TextChoices):
    UNKNOWN = "", _("Unknown")
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")


class CustomerStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    MERGED = "merged", _("Merged into another customer")


class Tag(models.Model):
    """A label on customers ("vip", "wholesale")."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    color = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Customer(TimeStampedModel):
    """One person, whatever channel they came through."""

    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    display_name = models.CharField(_("name"), max_length=200, blank=True)
    # Lower-cased, whitespace-folded name for index-backed prefix search (range scan, both backends).
    search_name = models.CharField(max_length=200, blank=True, db_index=True)
    email = models.CharField(_("primary email"), max_length=254, null=True, blank=True, db_index=True)
    phone = models.CharField(_("primary phone"), max_length=32, null=True, blank=True, db_index=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    gender = models.CharField(_("gender"), max_length=8, choices=Gender.choices, blank=True, default="")
    locale = models.CharField(_("locale"), max_length=16, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    lifecycle_stage = models.CharField(
        _("lifecycle stage"), max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.LEAD
    )
    custom_attributes = models.JSONField(_("custom attributes"), default=dict, blank=True)
    tags = models.ManyToManyField(Tag, through="CustomerTag", related_name="customers", blank=True)
    status = models.CharField(max_length=8, choices=CustomerStatus.choices, default=CustomerStatus.ACTIVE)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    first_seen_at = models.DateTimeField(_("first seen"), null=True, blank=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "-id"], name="cust_status_id_idx"),
            models.Index(fields=["country", "-id"], name="cust_country_id_idx"),
            models.Index(fields=["lifecycle_stage", "-id"], name="cust_stage_id_idx"),
            models.Index(fields=["last_seen_at", "id"], name="cust_last_seen_idx"),
        ]

    def __str__(self) -> str:
        return self.display_name or self.email or self.phone or f"Customer #{self.pk}"

    @property
    def is_merged(self) -> bool:
        return self.status == CustomerStatus.MERGED


class CustomerTag(models.Model):
    """A tag on a customer, with when it was added."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "tag"], name="uniq_customer_tag")]
        indexes = [models.Index(fields=["tag", "customer"], name="custtag_tag_cust_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.tag_id}"


class IdentityKind(models.TextChoices):
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    ANONYMOUS = "anonymous", _("Anonymous web id")
    EXTERNAL = "external", _("Shop account id")
    WECHAT = "wechat", _("WeChat open id")
    SOCIAL = "social", _("Social handle")


class Identity(models.Model):
    """A normalised identifier of a customer on one channel; unique per kind."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(_("kind"), max_length=16, choices=IdentityKind.choices)
    value = models.CharField(_("value"), max_length=254)
    source = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="uniq_identity_kind_value")]
        indexes = [models.Index(fields=["customer", "kind"], name="identity_customer_idx")]
        verbose_name_plural = "identities"

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class ConsentPurpose(models.TextChoices):
    MARKETING = "marketing", _("Marketing")
    ANALYTICS = "analytics", _("Analytics and personalisation")
    SERVICE = "service", _("Service messages")


class ConsentChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    PHONE = "phone", _("Phone")
    WECHAT = "wechat", _("WeChat")
    WEB = "web", _("Web")


class Consent(models.Model):
    """Whether a customer agreed to a purpose on a channel, with where and when that was said."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(max_length=16, choices=ConsentPurpose.choices)
    channel = models.CharField(max_length=16, choices=ConsentChannel.choices)
    granted = models.BooleanField()
    source = models.CharField(max_length=64, blank=True, help_text="Where it was given: checkout, form, import…")
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "purpose", "channel"], name="uniq_consent_purpose_channel")
        ]

    def __str__(self) -> str:
        return f"{self.purpose}/{self.channel}: {'granted' if self.granted else 'refused'}"


class Note(models.Model):
    """A free-text note by a staff member on a customer's timeline."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["customer", "-created_at"], name="note_customer_idx")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.body[:60]


class AttributeType(models.TextChoices):
    TEXT = "text", _("Text")
    NUMBER = "number", _("Number")
    DATE = "date", _("Date")
    BOOLEAN = "boolean", _("Yes/no")
    CHOICE = "choice", _("Choice")


class CustomAttributeDefinition(TimeStampedModel):
    """An admin-defined, typed customer field stored in `Customer.custom_attributes[key]`."""

    key = models.SlugField(max_length=64, unique=True)
    label = models.CharField(max_length=100)
    type = models.CharField(max_length=8, choices=AttributeType.choices)
    choices = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class CandidateStatus(models.TextChoices):
    OPEN = "open", _("Open")
    MERGED = "merged", _("Merged")
    DISMISSED = "dismissed", _("Not a duplicate")


class DuplicateCandidate(models.Model):
    """A pair of customers that look like one person, waiting for review (customer_a.id < customer_b.id)."""

    customer_a = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    customer_b = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()
    reasons = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=CandidateStatus.choices, default=CandidateStatus.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer_a", "customer_b"], name="uniq_duplicate_pair"),
            models.CheckConstraint(condition=Q(customer_a__lt=models.F("customer_b")), name="duplicate_pair_ordered"),
        ]
        indexes = [models.Index(fields=["status", "-score"], name="dup_status_score_idx")]

    def __str__(self) -> str:
        return f"#{self.customer_a_id} ~ #{self.customer_b_id} ({self.score:.2f})"


class CustomerMerge(models.Model):
    """The record of one merge, complete enough that unmerge restores both customers exactly."""

    survivor = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="merges_survived")
    merged = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="merges_absorbed")
    candidate = models.ForeignKey(DuplicateCandidate, null=True, blank=True, on_delete=models.SET_NULL)
    survivor_before = models.JSONField(help_text="Survivor's fields, tags and consents before the merge.")
    merged_before = models.JSONField(help_text="Merged customer's fields, tags and consents before the merge.")
    survivor_after = models.JSONField(
        default=dict, blank=True, help_text="Survivor's state right after the merge: unmerge keeps later edits."
    )
    moved = models.JSONField(default=dict, help_text="{'app.model.field': [ids moved to the survivor]}")
    candidates = models.JSONField(
        default=dict, blank=True, help_text="{candidate id: previous state} of review-queue pairs the merge settled."
    )
    field_choices = models.JSONField(default=dict, help_text="Which side won each conflicting field.")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    unmerged_at = models.DateTimeField(null=True, blank=True)
    unmerged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"#{self.merged_id} into #{self.survivor_id}"
