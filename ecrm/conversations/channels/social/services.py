"""Social mentions and direct messages into conversations, matched by social identity.

The customer is the identity ("social", "<platform>:<handle>"), created with the display name when
nobody has it. Idempotent by the platform's post id. A direct-message thread, or a mention thread,
is one conversation per person (a public comment thread has many authors, each their own customer).
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from ecrm.core.exceptions import ValidationFailed

from ...models import ChannelKind, Inbox
from ...services import Inbound, InboundResult, receive_inbound
from .schemas import SocialMessageIn


def social_identity(platform: str, handle: str) -> str:
    return f"{platform}:{handle.lstrip('@')}".lower()


def thread_key_for(item: SocialMessageIn) -> str:
    who = social_identity(item.platform, item.handle)
    if item.kind == "direct":
        return f"{who}:dm:{item.thread_id}" if item.thread_id else f"{who}:dm"
    return f"{who}:thread:{item.thread_id}" if item.thread_id else f"{who}:post:{item.external_id}"


def do_receive_social(*, inbox: Inbox, item: SocialMessageIn) -> InboundResult:
    if inbox.kind != ChannelKind.SOCIAL:
        raise ValidationFailed("Not a social inbox.", fields={"inbox": "not a social inbox"})
    identity = social_identity(item.platform, item.handle)
    link = str(item.link) if item.link else ""
    body = "\n".join(p for p in (item.text, link) if p)
    subject = (
        _("%(platform)s mention by @%(handle)s")
        if item.kind == "mention"
        else _("%(platform)s message from @%(handle)s")
    ) % {"platform": item.platform.capitalize(), "handle": item.handle}
    return receive_inbound(
        Inbound(
            inbox=inbox,
            identities=[("social", identity)],
            subject=subject,
            body_text=body,
            external_id=f"{item.platform}:{item.external_id}",
            thread_key=thread_key_for(item),
            sent_at=item.sent_at,
            traits={"first_name": item.display_name} if item.display_name else {},
            metadata={
                "social": {
                    "platform": item.platform,
                    "kind": item.kind,
                    "handle": item.handle,
                    "display_name": item.display_name,
                    "link": link,
                    "post_id": item.external_id,
                    "thread_id": item.thread_id,
                }
            },  # fmt: skip
        )
    )
