"""Web forms: validated field definitions, the console's writes, and public submissions.

A submission is checked field by field against the form's definition (every error reported at once,
nothing stored when any is wrong), then handed to the inbox's *target*: "conversation" stores it
through `receive_inbound`, the one inbound path (the email and phone fields become the customer's
identities; every field becomes a readable line of the message and a key of its metadata). Later
issues add targets ("lead") with `register_submission_target` and choose them in the inbox settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ecrm.core.audit import record_audit
from ecrm.core.exceptions import Conflict, ValidationFailed
from ecrm.core.models import User
from ecrm.core.permissions import check_perm
from ecrm.customers.normalize import InvalidIdentifier, normalize_email, normalize_phone

from ...models import ChannelKind, Inbox, WebForm
from . import antispam

# Forms are contact-center settings a manager looks after (the brief: admin and manager), unlike
# inboxes themselves, which hold credentials and stay with admins (conversations.configure).
FORM_CAPABILITY = "service.configure"

FIELD_TYPE_LABELS = {
    "text": gettext_lazy("Short text"), "email": gettext_lazy("Email"), "phone": gettext_lazy("Phone"),
    "textarea": gettext_lazy("Long text"), "select": gettext_lazy("Choice list"),
    "checkbox": gettext_lazy("Checkbox"),
}  # fmt: skip
CONTACT_TYPES = ("email", "phone")
MAX_FIELDS = 30
MAX_LENGTH = {"text": 300, "email": 254, "phone": 40, "textarea": 5000, "select": 200, "checkbox": 5}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRUE = {"on", "true", "1", "yes"}


class FieldDefinition(BaseModel):
    """One input of a web form."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=40)
    label: str = Field(min_length=1, max_length=120)
    type: Literal["text", "email", "phone", "textarea", "select", "checkbox"] = "text"
    required: bool = False
    options: list[str] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _check(self) -> FieldDefinition:
        if not _NAME_RE.match(self.name):
            raise ValueError("name: use lower-case letters, digits and _ and start with a letter")
        if self.name.startswith("ecrm_"):
            raise ValueError("name: names starting with ecrm_ are reserved")
        self.options = [o.strip() for o in self.options if o and o.strip()]
        if self.type == "select":
            if not self.options:
                raise ValueError("options: a choice list needs at least one option")
            if len(set(self.options)) != len(self.options):
                raise ValueError("options: each option must be different")
            if any(len(o) > 200 for o in self.options):
                raise ValueError("options: an option is longer than 200 characters")
        elif self.options:
            raise ValueError("options: only a choice list (select) has options")
        return self


def clean_field_definitions(raw: Any) -> list[dict[str, Any]]:
    """The validated field list, or ValidationFailed with `fields.<index>.<key>` entries."""
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed(_("A form needs at least one field."), fields={"fields": "required"})
    if len(raw) > MAX_FIELDS:
        raise ValidationFailed(
            _("A form has at most %(n)s fields.") % {"n": MAX_FIELDS}, fields={"fields": "too many"}
        )
    errors: dict[str, str] = {}
    clean: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        try:
            definition = FieldDefinition.model_validate(item)
        except ValidationError as exc:
            for e in exc.errors():
                key = ".".join(str(p) for p in e["loc"])
                msg = str(e["msg"]).removeprefix("Value error, ")
                if not key and ": " in msg:  # a model-level check names its field first
                    key, msg = msg.split(": ", 1)
                errors[f"fields.{index}.{key or 'field'}"] = msg
            continue
        clean.append(definition.model_dump())
    seen: set[str] = set()
    for index, d in enumerate(clean):
        if d["name"] in seen:
            errors[f"fields.{index}.name"] = f"the name {d['name']!r} is used twice"
        seen.add(d["name"])
    if not errors and not any(d["type"] in CONTACT_TYPES for d in clean):
        errors["fields"] = "add an email or phone field, so the customer can be recognised and answered"
    if errors:
        raise ValidationFailed(_("Some fields of the form are not valid."), fields=errors)
    return clean


# --- console writes ------------------------------------------------------------------------------


def _check_form_values(*, inbox: Inbox, name: str, slug: str, success_message: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if inbox.kind != ChannelKind.WEBFORM:
        errors["inbox"] = "not a web-form inbox"
    if not (name or "").strip():
        errors["name"] = "required"
    elif len(name.strip()) > 120:
        errors["name"] = "at most 120 characters"
    if not _SLUG_RE.match(slug or "") or len(slug) > 60:
        errors["slug"] = "use 1 to 60 lower-case letters, digits and single hyphens"
    if len(success_message or "") > 300:
        errors["success_message"] = "at most 300 characters"
    return errors


def do_save_webform(
    *,
    actor: User,
    inbox: Inbox,
    name: str,
    slug: str,
    fields: Any,
    success_message: str = "",
    is_active: bool = True,
    form: WebForm | None = None,
) -> WebForm:
    """Create (form=None) or update a web form; every bad value is reported at once."""
    check_perm(actor, FORM_CAPABILITY)
    slug = (slug or "").strip().lower()
    errors = _check_form_values(inbox=inbox, name=name, slug=slug, success_message=success_message)
    try:
        clean_fields = clean_field_definitions(fields)
    except ValidationFailed as exc:
        errors.update(exc.fields)
        clean_fields = []
    if errors:
        raise ValidationFailed(_("The form could not be saved."), fields=errors)
    values = {
        "inbox": inbox,
        "name": name.strip(),
        "slug": slug,
        "fields": clean_fields,
        "success_message": (success_message or "").strip(),
        "is_active": bool(is_active),
    }
    try:
        with transaction.atomic():
            if form is None:
                form = WebForm.objects.create(**values)
                record_audit(actor=actor, action="webform.create", obj=form, after={"name": form.name})
            else:
                before = {"name": form.name, "slug": form.slug, "fields": form.fields,
                          "is_active": form.is_active}  # fmt: skip
                for key, value in values.items():
                    setattr(form, key, value)
                form.save(update_fields=list(values))
                record_audit(actor=actor, action="webform.update", obj=form, before=before,
                             after={"name": form.name, "slug": form.slug, "fields": form.fields,
                                    "is_active": form.is_active})  # fmt: skip
    except IntegrityError:
        raise ValidationFailed(
            _("The form could not be saved."), fields={"slug": "another form already uses this address"}
        ) from None
    return form


# --- submissions ---------------------------------------------------------------------------------


@dataclass
class Submission:
    """A checked submission: the values by field name, and the customer's identities."""

    form: WebForm
    values: dict[str, Any]
    identities: list[tuple[str, str]]
    traits: dict[str, str] = field(default_factory=dict)
    page: str = ""  # the shop page the form was embedded on (Referer), for the agent


@dataclass
class SubmissionResult:
    status: Literal["stored", "spam"]
    target: Any = None  # what the target created (an InboundResult for "conversation")


SubmissionTarget = Callable[[Submission], Any]
_TARGETS: dict[str, SubmissionTarget] = {}


def register_submission_target(name: str, handler: SubmissionTarget) -> None:
    """Let another app receive submissions (the leads app: "lead"); chosen per inbox in its settings."""
    _TARGETS[name] = handler


def submission_targets() -> dict[str, SubmissionTarget]:
    return dict(_TARGETS)


def check_submission(form: WebForm, data: Any) -> Submission:
    """Validate posted values against the form (a QueryDict or a dict); ValidationFailed lists every
    bad field by its name. Text is stored as plain text (shown escaped), control characters removed."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    identities: list[tuple[str, str]] = []
    for d in form.fields:
        name, ftype = d["name"], d["type"]
        raw = data.get(name, "")
        raw = "" if raw is None else str(raw)
        raw = _CONTROL_RE.sub("", raw).replace("\r\n", "\n").strip()
        if ftype == "checkbox":
            checked = raw.lower() in _TRUE
            if d.get("required") and not checked:
                errors[name] = _("Please tick this box.")
            values[name] = checked
            continue
        if not raw:
            if d.get("required"):
                errors[name] = _("This field is required.")
            values[name] = ""
            continue
        if len(raw) > MAX_LENGTH[ftype]:
            errors[name] = _("At most %(n)s characters.") % {"n": MAX_LENGTH[ftype]}
            continue
        if ftype != "textarea":
            raw = " ".join(raw.split())
        try:
            if ftype == "email":
                identities.append(("email", normalize_email(raw)))
            elif ftype == "phone":
                identities.append(("phone", normalize_phone(raw)))
        except InvalidIdentifier:
            errors[name] = (
                _("Enter a valid email address.") if ftype == "email" else _("Enter a valid phone number.")
            )
            continue
        if ftype == "select" and raw not in d.get("options", []):
            errors[name] = _("Choose one of the options.")
            continue
        values[name] = raw
    if not errors and not identities:
        for d in form.fields:
            if d["type"] in CONTACT_TYPES:
                errors[d["name"]] = _("Give us an email address or a phone number so we can answer.")
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), fields=errors)
    # email first: the first identity is the reply address
    identities.sort(key=lambda i: CONTACT_TYPES.index(i[0]))
    traits = {}
    for key in ("first_name", "last_name"):
        if values.get(key):
            traits[key] = str(values[key])[:100]
    if not traits and values.get("name"):
        traits["first_name"] = str(values["name"])[:100]
    return Submission(form=form, values=values, identities=identities, traits=traits)


def submission_text(submission: Submission) -> str:
    """The readable body an agent sees: one "Label: value" line per field, long text indented."""
    lines = []
    for d in submission.form.fields:
        value = submission.values.get(d["name"], "")
        if d["type"] == "checkbox":
            value = _("yes") if value else _("no")
        if d["type"] == "textarea" and value:
            lines.append(f"{d['label']}:")
            lines.extend("  " + line for line in str(value).splitlines())
        else:
            lines.append(f"{d['label']}: {value if value != '' else '—'}")
    return "\n".join(lines)


def _create_conversation(submission: Submission) -> Any:
    from ...services import Inbound, receive_inbound

    form = submission.form
    return receive_inbound(
        Inbound(
            inbox=form.inbox,
            identities=submission.identities,
            subject=form.name,
            body_text=submission_text(submission),
            traits=submission.traits,
            metadata={
                "webform": {"id": form.pk, "slug": form.slug, "name": form.name},
                "fields": submission.values,
                **({"page": submission.page} if submission.page else {}),
            },
        )
    )


register_submission_target("conversation", _create_conversation)


def _store(form: WebForm, submission: Submission, page: str) -> SubmissionResult:
    from ..base import get_adapter

    submission.page = (page or "")[:500]
    handler = _TARGETS[get_adapter(ChannelKind.WEBFORM).config(form.inbox).creates]
    with transaction.atomic():
        return SubmissionResult(status="stored", target=handler(submission))


def _check_open(form: WebForm) -> None:
    if not form.is_active or not form.inbox.is_active:
        raise Conflict(_("This form is closed."))


def do_submit_webform(
    *, form: WebForm, data: Any, token: str = "", honeypot: str = "", page: str = ""
) -> SubmissionResult:
    """A public submission. A filled honeypot or a post faster than the minimum fill time is spam:
    counted, nothing stored (the honeypot is answered as if it worked, so bots learn nothing).
    Bad values, then a bad token, raise (ValidationFailed, antispam.TokenProblem) and store nothing."""
    _check_open(form)
    from ..base import get_adapter

    config = get_adapter(ChannelKind.WEBFORM).config(form.inbox)
    if honeypot:
        antispam.count_spam("webform", form.pk)
        return SubmissionResult(status="spam")
    # Field errors first: a person who sends an empty form at once should read what is missing, not
    # "too fast". Nothing is stored before the token check below passes.
    submission = check_submission(form, data)
    try:
        antispam.check_token(token, "webform", form.pk, min_fill_seconds=config.min_fill_seconds)
    except antispam.TokenProblem as exc:
        if exc.too_fast:
            antispam.count_spam("webform", form.pk)
        raise
    return _store(form, submission, page)


def do_submit_webform_from_server(*, form: WebForm, data: dict[str, Any], page: str = "") -> SubmissionResult:
    """A submission the shop's own server relays with a write API key (its own form, its own spam
    checks): the same validation and target, no token or honeypot. Unknown field names are refused,
    so a renamed field is noticed rather than silently dropped."""
    _check_open(form)
    known = {d["name"] for d in form.fields}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationFailed(
            _("Some fields are not on this form."), fields={k: "not a field of this form" for k in unknown}
        )
    bad = sorted(k for k, v in data.items() if v is not None and not isinstance(v, str | bool | int | float))
    if bad:
        raise ValidationFailed(
            _("Some values are not text."), fields={k: "must be text or true/false" for k in bad}
        )
    return _store(form, check_submission(form, data), page)
