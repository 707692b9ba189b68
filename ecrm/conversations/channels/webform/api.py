"""POST /api/v1/conversations/webform/{slug}/submissions: the shop's server relays a submission of
its own form (write key). Same validation and target as the public page; 422 names each bad field."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status
from pydantic import BaseModel, ConfigDict, Field

from ecrm.core.api_auth import require_write
from ecrm.core.exceptions import NotFound

from ...models import ChannelKind, WebForm
from .services import do_submit_webform_from_server

router = Router(tags=["conversations: web forms"])


class SubmissionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    values: dict[str, Any] = Field(description="field name → value (text; true/false for a checkbox)")
    page: str = Field(default="", max_length=500, description="the shop page the form was on")


class SubmissionOut(BaseModel):
    status: str
    conversation: int | None = None
    customer: int | None = None
    message: int | None = None


@router.post("/{slug}/submissions", response={201: SubmissionOut}, summary="Relay a web-form submission")
def submit(request: HttpRequest, slug: str, payload: SubmissionIn):
    require_write(request)
    form = WebForm.objects.select_related("inbox").filter(slug=slug, inbox__kind=ChannelKind.WEBFORM).first()
    if form is None:
        raise NotFound("No such form.")
    result = do_submit_webform_from_server(form=form, data=payload.values, page=payload.page)
    target = result.target
    body: dict[str, Any] = {"status": result.status}
    if hasattr(target, "conversation") and hasattr(target, "message"):  # the "conversation" target
        body.update(conversation=target.conversation.pk, customer=target.conversation.customer_id,
                    message=target.message.pk)  # fmt: skip
    return Status(201, body)
