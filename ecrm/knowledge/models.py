"""Knowledge base: categories, articles, per-language versions (draft → published → superseded) and
the portable inverted index used for search (same rows and ranking on SQLite and PostgreSQL)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ecrm.core.models import TimeStampedModel


class Language(models.TextChoices):
    EN = "en", _("English")
    ZH = "zh-hans", _("Simplified Chinese")


class Visibility(models.TextChoices):
    PUBLIC = "public", _("Public (help center)")
    INTERNAL = "internal", _("Internal (agents only)")


class BodyFormat(models.TextChoices):
    MARKDOWN = "markdown", _("Markdown")
    HTML = "html", _("HTML")


class VersionStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    SUPERSEDED = "superseded", _("Superseded")


class Category(models.Model):
    """A help-center section; flat list shown in `position` order, named in both languages."""

    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    name_en = models.CharField(_("name (English)"), max_length=120)
    name_zh = models.CharField(_("name (Chinese)"), max_length=120, blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name_en

    def name_for(self, language: str) -> str:
        return (self.name_zh or self.name_en) if language == Language.ZH else self.name_en


class Article(TimeStampedModel):
    """One topic; its text lives in ArticleVersion rows, one series per language."""

    slug = models.SlugField(_("slug"), max_length=120, unique=True)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="articles"
    )
    visibility = models.CharField(
        _("visibility"), max_length=8, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.slug


class ArticleVersion(models.Model):
    """The text of an article in one language at one point; at most one live (published) version per
    article and language. Editing a published version creates the next draft; history is kept."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="versions")
    language = models.CharField(_("language"), max_length=8, choices=Language.choices)
    number = models.PositiveIntegerField(_("version"))
    title = models.CharField(_("title"), max_length=200)
    body_format = models.CharField(
        _("format"), max_length=8, choices=BodyFormat.choices, default=BodyFormat.MARKDOWN
    )
    body = models.TextField(_("body"), blank=True)
    body_html = models.TextField(blank=True, help_text="Rendered and sanitised; safe to show as is.")
    body_text = models.TextField(blank=True, help_text="Plain text, for snippets and replies.")
    status = models.CharField(max_length=12, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    is_live = models.BooleanField(default=False)
    # Lengths in index terms, for BM25 length normalisation.
    title_terms = models.PositiveIntegerField(default=0)
    body_terms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["article", "language", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["article", "language", "number"], name="uniq_kb_version_number"),
            models.UniqueConstraint(
                fields=["article", "language"], condition=Q(is_live=True), name="uniq_kb_live_version"
            ),
        ]
        indexes = [models.Index(fields=["is_live", "language"], name="kb_version_live_idx")]

    def __str__(self) -> str:
        return f"{self.article.slug} [{self.language}] v{self.number}"

    @property
    def is_draft(self) -> bool:
        return self.status == VersionStatus.DRAFT


class IndexField(models.TextChoices):
    TITLE = "t", _("title")
    BODY = "b", _("body")


class SearchTerm(models.Model):
    """One row of the inverted index: how often `term` occurs in one field of one version.
    Only current versions (live ones and open drafts) are indexed."""

    term = models.CharField(max_length=64)
    version = models.ForeignKey(ArticleVersion, on_delete=models.CASCADE, related_name="terms")
    field = models.CharField(max_length=1, choices=IndexField.choices)
    tf = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["term", "version", "field"], name="uniq_kb_term_version_field")
        ]
        indexes = [models.Index(fields=["version"], name="kb_term_version_idx")]

    def __str__(self) -> str:
        return f"{self.term}@{self.version_id}/{self.field}={self.tf}"
