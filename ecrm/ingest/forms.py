"""Forms of the import pages."""

from __future__ import annotations

from django import forms
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from .importing.services import MAX_UPLOAD_BYTES
from .models import ImportJob, ImportKind
from .sources.csv import importer_for


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("What the file holds"), choices=ImportKind.choices)
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_("UTF-8 or GBK/GB18030, first row naming the columns. Up to %(size)s.")
        % {"size": filesizeformat(MAX_UPLOAD_BYTES)},
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv,.txt"}),
    )


class MappingForm(forms.Form):
    """One select per column of the file: which field it fills, or ignore it."""

    def __init__(self, *args, job: ImportJob, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        choices = [("", _("— ignore this column —"))] + [
            (f.name, f.label) for f in importer_for(job.kind).available_fields()
        ]
        for index, column in enumerate(job.header):
            self.fields[f"col_{index}"] = forms.ChoiceField(
                label=column or _("(unnamed column %(n)s)") % {"n": index + 1},
                choices=choices,
                required=False,
                initial=job.mapping.get(column, ""),
            )

    def mapping(self) -> dict[str, str]:
        return {column: self.cleaned_data.get(f"col_{i}") or "" for i, column in enumerate(self.job.header)}

    def rows(self):
        """(column, bound field) pairs for the template."""
        return [(column, self[f"col_{i}"]) for i, column in enumerate(self.job.header)]
