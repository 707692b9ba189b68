"""Reads on web forms: the console's (with the permission rule) and the public page's."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from ecrm.core.exceptions import NotFound
from ecrm.core.permissions import check_perm

from ...models import ChannelKind, Inbox, WebForm
from .services import FORM_CAPABILITY


def webforms_for_user(user: Any) -> QuerySet[WebForm]:
    check_perm(user, FORM_CAPABILITY)
    return WebForm.objects.select_related("inbox", "inbox__team").order_by("name", "id")


def access_webform_for_user(user: Any, form_id: int) -> WebForm:
    form = webforms_for_user(user).filter(pk=form_id).first()
    if form is None:
        raise NotFound("No such form.")
    return form


def webform_inboxes(user: Any) -> QuerySet[Inbox]:
    check_perm(user, FORM_CAPABILITY)
    return Inbox.objects.filter(kind=ChannelKind.WEBFORM, is_active=True).select_related("team")


def public_webform(slug: str) -> WebForm:
    """An active form on an active inbox, for the public page; 404 otherwise (no hint why)."""
    form = (
        WebForm.objects.select_related("inbox")
        .filter(slug=slug, is_active=True, inbox__is_active=True, inbox__kind=ChannelKind.WEBFORM)
        .first()
    )
    if form is None:
        raise NotFound("No such form.")
    return form
