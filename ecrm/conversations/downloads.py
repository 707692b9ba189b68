"""Attachment downloads: the only way a stored customer file leaves the server.

Files live in private storage (outside the web root). They are served after the same visibility
check as the conversation, always as a download (`Content-Disposition: attachment`) with
`nosniff` and a sandboxing CSP, so an HTML or SVG file a customer sent cannot run in our origin.
"""

from __future__ import annotations

from django.http import FileResponse, Http404

from ecrm.core.exceptions import NotFound
from ecrm.core.permissions import check_perm
from ecrm.core.web import console_view

from .files import ALLOWED_TYPES
from .models import Attachment
from .selectors import visibility_q


def access_attachment_for_user(user, attachment_id: int) -> Attachment:
    """An attachment on a conversation `user` may see; NotFound otherwise (no hint it exists)."""
    check_perm(user, "conversations.view")
    att = (
        Attachment.objects.select_related("message__conversation")
        .filter(pk=attachment_id)
        .filter(visibility_q(user, prefix="message__conversation__"))
        .first()
    )
    if att is None:
        raise NotFound("No such attachment.")
    return att


@console_view("conversations.view")
def attachment(request, pk: int):
    att = access_attachment_for_user(request.user, pk)
    try:
        fh = att.file.open("rb")
    except FileNotFoundError:
        raise Http404("The file is missing from storage.") from None
    ctype = att.content_type if att.content_type in ALLOWED_TYPES else "application/octet-stream"
    response = FileResponse(fh, as_attachment=True, filename=att.filename, content_type=ctype)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
