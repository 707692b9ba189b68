"""Forms that parse console input; validation of meaning stays in the services."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .merge import MERGE_FIELDS
from .models import AttributeType, ConsentChannel, ConsentPurpose, LifecycleStage

LAST_SEEN = [
    ("", _("Any time")),
    ("7", _("Within 7 days")),
    ("30", _("Within 30 days")),
    ("90", _("Within 90 days")),
    ("-30", _("Not for 30+ days")),
    ("-90", _("Not for 90+ days")),
    ("-365", _("Not for a year+")),
    ("never", _("Never seen")),
]


class CustomerFilterForm(forms.Form):
    """The list filters (rendered; values parsed by selectors.CustomerFilters)."""

    q = forms.CharField(required=False, label=_("Search"))
    tag = forms.ChoiceField(required=False, label=_("Tag"))
    stage = forms.ChoiceField(required=False, label=_("Lifecycle stage"), choices=[("", _("Any stage")), *LifecycleStage.choices])
    country = forms.CharField(required=False, label=_("Country"), max_length=2)
    has_orders = forms.ChoiceField(
        required=False, label=_("Orders"), choices=[("", _("Any")), ("yes", _("Has orders")), ("no", _("No orders"))]
    )
    last_seen = forms.ChoiceField(required=False, label=_("Last seen"), choices=LAST_SEEN)

    def __init__(self, *args, tags: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tag"].choices = [("", _("Any tag")), *((t, t) for t in tags)]


class NoteForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea, max_length=10_000)


class ConsentForm(forms.Form):
    purpose = forms.ChoiceField(choices=ConsentPurpose.choices)
    channel = forms.ChoiceField(choices=ConsentChannel.choices)
    granted = forms.TypedChoiceField(choices=[("1", "yes"), ("0", "no")], coerce=lambda v: v == "1")
    source = forms.CharField(required=False, max_length=64)


class AttributeDefinitionForm(forms.Form):
    key = forms.CharField(label=_("Key"), max_length=64)
    label = forms.CharField(label=_("Label"), max_length=100)
    type = forms.ChoiceField(label=_("Type"), choices=AttributeType.choices)
    choices = forms.CharField(label=_("Choices (comma-separated)"), required=False)

    def choice_list(self) -> list[str]:
        return [c.strip() for c in self.cleaned_data.get("choices", "").split(",") if c.strip()]


def field_choices_from_post(post) -> dict[str, str]:
    """`choice_<field>=survivor|merged` radio buttons of the comparison page."""
    return {name: post[f"choice_{name}"] for name in MERGE_FIELDS if post.get(f"choice_{name}") in ("survivor", "merged")}
