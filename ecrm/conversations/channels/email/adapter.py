"""Email inboxes: validated settings, SMTP replies that thread in the customer's mail program, and the
subject-reference thread resolver ("Re: Where is my order? [#123]")."""

from __future__ import annotations

import re
import smtplib
from email.utils import formataddr, make_msgid
from typing import Any

from django.core.mail import EmailMultiAlternatives, get_connection
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ecrm.customers.models import Identity

from ...models import Conversation, Message, MessageDirection
from ...services import Inbound, register_thread_resolver
from ..base import ChannelAdapter, DeliveryError, register_adapter
from .loops import BOUNCE_SENDER_RE
from .parse import SUBJECT_REF_RE

EMAIL_RE = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
REPLY_PREFIX_RE = re.compile(r"^\s*((re|fw|fwd|aw|sv|回复|答复|转发)\s*[:：]\s*)+", re.IGNORECASE)


class SmtpSettings(BaseModel):
    """Send through this server instead of the site's EMAIL_BACKEND (e.g. the shop's own mailbox)."""

    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=587, ge=1, le=65535)
    username: str = ""
    password: str = ""
    use_tls: bool = True
    use_ssl: bool = False
    timeout: float = Field(default=30, gt=0, le=300)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpSettings:
        if self.use_tls and self.use_ssl:
            raise ValueError("choose STARTTLS (use_tls) or SSL (use_ssl), not both")
        return self


class ImapSettings(BaseModel):
    """A mailbox the poller reads unseen mail from."""

    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=993, ge=1, le=65535)
    ssl: bool = True
    username: str = Field(min_length=1)
    password: str = ""
    folder: str = Field(default="INBOX", min_length=1, max_length=200)
    poll_seconds: int = Field(default=60, ge=30, le=86400)
    batch_size: int = Field(default=100, ge=1, le=1000)


class EmailConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_address: str = Field(max_length=254)
    from_name: str = Field(default="", max_length=120)
    smtp: SmtpSettings | None = None
    imap: ImapSettings | None = None

    @field_validator("from_address")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        value = value.strip()
        if not EMAIL_RE.match(value):
            raise ValueError("enter a valid email address, e.g. support@shop.example")
        return value

    @field_validator("from_name")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value or "\r" in value:
            raise ValueError("must be one line")
        return value.strip()


@register_adapter
class EmailAdapter(ChannelAdapter):
    kind = "email"
    config_schema = EmailConfig
    can_reply = True

    def send(self, message: Message) -> dict[str, Any]:
        conversation = message.conversation
        try:
            cfg: EmailConfig = self.config(message.inbox)
        except ValueError as exc:
            raise DeliveryError(f"the email inbox settings are not valid: {exc}", permanent=True) from exc
        # answer the customer's last own message, not an out-of-office or a bounce in between
        recent = (
            Message.objects.filter(conversation=conversation, direction=MessageDirection.INBOUND)
            .exclude(external_id=None)
            .order_by("-created_at", "-id")[:20]
        )
        last_in = next((m for m in recent if not (m.metadata or {}).get("auto")), None)
        email_meta = (last_in.metadata or {}).get("email", {}) if last_in else {}
        to = email_meta.get("reply_to") or conversation.contact
        if not to or "@" not in to:
            raise DeliveryError("the conversation has no email address to reply to", permanent=True)
        if BOUNCE_SENDER_RE.match(to):
            raise DeliveryError(
                f"{to} is a mail system address; replying to it would start a loop", permanent=True
            )
        domain = cfg.from_address.rsplit("@", 1)[1]
        message_id = make_msgid(idstring=f"ecrm{message.pk}", domain=domain)
        headers = {"Message-ID": message_id}
        if last_in is not None and not last_in.external_id.startswith("<sha256."):
            refs = [r for r in email_meta.get("references", []) if r != last_in.external_id]
            headers["In-Reply-To"] = last_in.external_id
            headers["References"] = " ".join([*refs[-10:], last_in.external_id])
        mail = EmailMultiAlternatives(
            subject=reply_subject(conversation),
            body=message.body_text,
            from_email=formataddr((cfg.from_name, cfg.from_address)) if cfg.from_name else cfg.from_address,
            to=[to],
            headers=headers,
            connection=self._connection(cfg),
        )
        if message.body_html:
            mail.attach_alternative(message.body_html, "text/html")
        for att in message.attachments.all():
            with att.file.open("rb") as fh:
                mail.attach(att.filename, fh.read(), att.content_type)
        try:
            mail.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in exc.recipients.items())
            raise DeliveryError(
                f"recipient refused: {detail}", permanent=all(c >= 500 for c in codes)
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP error {exc.smtp_code}: {_text(exc.smtp_error)}", permanent=500 <= exc.smtp_code < 600
            ) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"mail server unreachable: {exc}", permanent=False) from exc
        return {"external_id": message_id, "email": {"to": to, "subject": mail.subject}}

    def _connection(self, cfg: EmailConfig):
        if cfg.smtp is None:
            return get_connection(fail_silently=False)  # the site's EMAIL_BACKEND
        s = cfg.smtp
        return get_connection(
            "django.core.mail.backends.smtp.EmailBackend",
            host=s.host,
            port=s.port,
            username=s.username or None,
            password=s.password or None,
            use_tls=s.use_tls,
            use_ssl=s.use_ssl,
            timeout=s.timeout,
            fail_silently=False,
        )


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def reply_subject(conversation: Conversation) -> str:
    """'Re: <subject> [#id]': the reference threads replies whose mail program dropped the headers."""
    subject = SUBJECT_REF_RE.sub("", conversation.subject or "").strip()
    subject = REPLY_PREFIX_RE.sub("", subject).strip() or "Your message"
    return f"Re: {subject} [#{conversation.pk}]"


def resolve_subject_reference(data: Inbound) -> int | None:
    """Conversation N for '[#N]' in the subject, only if it is on this inbox AND with this sender.

    Numbers are easy to guess; without the sender check anyone could file mail into someone else's
    thread (and read the replies).
    """
    if data.inbox.kind != "email" or not data.identities:
        return None
    match = SUBJECT_REF_RE.search(data.subject or "")
    if not match:
        return None
    conv = (
        Conversation.objects.filter(pk=int(match.group(1)), inbox_id=data.inbox.pk)
        .only("id", "contact", "customer_id")
        .first()
    )
    if conv is None:
        return None
    sender = data.identities[0][1].strip().lower()
    if conv.contact.strip().lower() == sender:
        return conv.pk
    if Identity.objects.filter(customer_id=conv.customer_id, kind="email", value=sender).exists():
        return conv.pk
    return None


register_thread_resolver(resolve_subject_reference)
