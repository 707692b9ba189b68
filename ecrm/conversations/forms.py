"""Forms of the inbox console pages: they parse and report field errors; services do the rest."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import ChannelKind, ConversationStatus


class ReplyForm(forms.Form):
    body = forms.CharField(label=_("Reply"), widget=forms.Textarea(attrs={"rows": 4}), max_length=20_000)


class NoteForm(forms.Form):
    body = forms.CharField(
        label=_("Internal note"), widget=forms.Textarea(attrs={"rows": 3}), max_length=20_000
    )


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=ConversationStatus.choices)


class AssignForm(forms.Form):
    assignee = forms.IntegerField(label=_("Assignee"), required=False, min_value=1)


class CannedReplyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    shortcut = forms.SlugField(label=_("Shortcut"), max_length=40, required=False)
    body = forms.CharField(
        label=_("Text"),
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=10_000,
        help_text=_("Variables: {{ customer.name }}, {{ customer.first_name }}, {{ last_order.number }} …"),
    )
    team = forms.TypedChoiceField(label=_("Shared with"), coerce=int, empty_value=None, required=False)

    def __init__(self, *args, team_choices: list[tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = team_choices or []


class InboxSettingsForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    kind = forms.ChoiceField(label=_("Channel"), choices=ChannelKind.choices)
    team = forms.TypedChoiceField(label=_("Team"), coerce=int, empty_value=None, required=False)
    auto_assign = forms.BooleanField(label=_("Assign round-robin"), required=False)
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)
    config = forms.JSONField(
        label=_("Settings (JSON)"), required=False, widget=forms.Textarea(attrs={"rows": 8})
    )

    def __init__(self, *args, team_choices: list[tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = team_choices or []

    def clean_config(self):
        value = self.cleaned_data.get("config")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError(_("The settings must be a JSON object."))
        return value
