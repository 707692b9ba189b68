"""Mail loops: recognise auto-replies and bounces so nothing ever answers them automatically.

An out-of-office answering our reply, answered by an auto-acknowledgement, answered by the
out-of-office again... is how mail loops start. Such messages are stored (an agent may want to see
that a customer is away or that an address bounced) with `metadata["auto"]` set, and every automatic
action must check `is_automatic(message)` first. A bounce also marks the reply it bounced as failed.
"""

from __future__ import annotations

import re
from email.message import Message as MimeMessage
from typing import Any

from django.db import transaction

from ecrm.core.consumers import publish

from ...models import DeliveryStatus, Message, MessageDirection
from .parse import ParsedEmail, message_ids

AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder")
AUTO_SUBJECT_RE = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?reply|autoreply|auto:|自动回复|自動回覆|"
    r"自动答复|休假)",
    re.IGNORECASE,
)
BOUNCE_SENDER_RE = re.compile(r"^(mailer-daemon|postmaster)@", re.IGNORECASE)
BOUNCE_SUBJECT_RE = re.compile(
    r"(undeliver(ed|able)|delivery status notification|mail delivery failed|returned mail|"
    r"failure notice|退信|无法投递)",
    re.IGNORECASE,
)


def classify(parsed: ParsedEmail) -> tuple[str | None, str]:
    """("bounce" | "autoreply" | None, the reason). Bounces first: a bounce may also look automatic."""
    h = parsed.headers
    ctype = parsed.content_type
    report_type = ""
    if ctype == "multipart/report":
        match = re.search(r"report-type\s*=\s*\"?([\w-]+)", h.get("content-type", ""), re.IGNORECASE)
        report_type = match.group(1).lower() if match else ""
        if report_type in ("delivery-status", ""):
            return "bounce", "multipart/report delivery-status"
    if BOUNCE_SENDER_RE.match(parsed.from_address):
        return "bounce", f"sender {parsed.from_address.split('@')[0]}"
    auto_submitted = h.get("auto-submitted", "").strip().lower()
    return_path = h.get("return-path", "").strip()
    if return_path == "<>" and not auto_submitted and BOUNCE_SUBJECT_RE.search(parsed.subject):
        return "bounce", "empty Return-Path"
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return "autoreply", f"Auto-Submitted: {auto_submitted}"
    for name in AUTO_HEADERS:
        if name in h:
            return "autoreply", f"{name} header"
    precedence = h.get("precedence", "").strip().lower()
    if precedence in AUTO_PRECEDENCE:
        return "autoreply", f"Precedence: {precedence}"
    if "list-id" in h:
        return "autoreply", "List-Id header (mailing list)"
    if AUTO_SUBJECT_RE.search(parsed.subject):
        return "autoreply", "out-of-office subject"
    if return_path == "<>":
        return "bounce", "empty Return-Path"
    if report_type == "disposition-notification":
        return "autoreply", "read receipt"
    return None, ""


def is_automatic(message: Message) -> bool:
    """True for an auto-reply or bounce: never answer it, assign it or count it as a customer's turn."""
    return bool((message.metadata or {}).get("auto"))


def bounced_message_ids(parsed: ParsedEmail) -> list[str]:
    """Message-IDs of what bounced: the original's headers inside the report, then our references."""
    found: list[str] = []
    for part in parsed.report_parts:
        for text in _report_texts(part):
            for name in ("original-message-id", "message-id"):
                for match in re.finditer(rf"(?im)^{name}\s*:\s*(.+)$", text):
                    found.extend(message_ids(match.group(1)))
    if "original-message-id" in parsed.headers:
        found.extend(message_ids(parsed.headers["original-message-id"]))
    found.extend(reversed(parsed.thread_references))
    return list(dict.fromkeys(found))


def diagnostic(parsed: ParsedEmail) -> str:
    """The server's reason (Diagnostic-Code / Status), for the failed reply's error."""
    for part in parsed.report_parts:
        for text in _report_texts(part):
            match = re.search(r"(?im)^diagnostic-code\s*:\s*(.+(?:\n[ \t].+)*)$", text)
            if match:
                return re.sub(r"\s+", " ", match.group(1)).strip()[:500]
            match = re.search(r"(?im)^status\s*:\s*(\S+)", text)
            if match:
                return f"status {match.group(1)}"
    return parsed.subject[:200] or "bounced"


def _report_texts(part: MimeMessage) -> list[str]:
    texts = []
    payload = part.get_payload()
    if isinstance(payload, list):  # message/* parts hold parsed sub-messages
        for sub in payload:
            if isinstance(sub, MimeMessage):
                texts.append("\n".join(f"{k}: {v}" for k, v in sub.raw_items()))
                body = sub.get_payload()
                if isinstance(body, str):
                    texts.append(body)
    elif isinstance(payload, str):
        texts.append(payload)
    raw = part.get_payload(decode=True)
    if isinstance(raw, bytes):
        texts.append(raw.decode("utf-8", errors="replace"))
    return [t.replace("\r\n", "\n") for t in texts]


def find_bounced_reply(inbox_id: int, parsed: ParsedEmail) -> Message | None:
    """Our outbound message that this bounce is about, if it can be identified on this inbox."""
    candidates = bounced_message_ids(parsed)
    if not candidates:
        return None
    return (
        Message.objects.select_related("conversation")
        .filter(inbox_id=inbox_id, direction=MessageDirection.OUTBOUND, external_id__in=candidates[:50])
        .order_by("-created_at")
        .first()
    )


def do_mark_bounced(*, message: Message, reason: str, bounce_message_id: int) -> None:
    """Mark an outbound reply failed because it bounced (the agent sees it in the thread)."""
    with transaction.atomic():
        meta: dict[str, Any] = {**(message.metadata or {}), "bounced_by": bounce_message_id}
        Message.objects.filter(pk=message.pk).update(
            status=DeliveryStatus.FAILED, error=f"Bounced: {reason}"[:2000], metadata=meta
        )
        payload = {
            "type": "message.status",
            "conversation": message.conversation_id,
            "message": message.pk,
            "status": DeliveryStatus.FAILED,
        }
        group = f"conversation.{message.conversation_id}"
        transaction.on_commit(lambda: publish(group, payload))
