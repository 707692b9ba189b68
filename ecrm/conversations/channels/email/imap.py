"""Poll an IMAP mailbox: fetch unseen mail, store each message, flag it \\Seen only once it is stored.

Mail is fetched with BODY.PEEK[] (which does not set \\Seen), stored in its own transaction, and only
then flagged. If the process dies in between, the message is fetched again next time and the
Message-ID makes the second store a no-op, so nothing is lost and nothing is stored twice. One
message that cannot be stored is logged and left unseen for the next poll; it never blocks the rest.
A message that can never be stored (no sender) is flagged \\Seen and \\Flagged so a person looks.
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from ecrm.core.exceptions import ValidationFailed

from ...models import Inbox
from .adapter import EmailAdapter, ImapSettings
from .inbound import MessageTooLarge, ingest_raw_email

logger = logging.getLogger(__name__)

IMAP_TIMEOUT = 60


@dataclass
class PollResult:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0  # unusable (flagged for a person)
    failed: list[str] = field(default_factory=list)  # uids left unseen for the next poll


def connect(settings: ImapSettings) -> imaplib.IMAP4:
    if settings.ssl:
        # imaplib's own default context does not verify the server certificate; this one does
        conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
            settings.host, settings.port, ssl_context=ssl.create_default_context(), timeout=IMAP_TIMEOUT
        )
    else:
        conn = imaplib.IMAP4(settings.host, settings.port, timeout=IMAP_TIMEOUT)
    conn.login(settings.username, settings.password)
    return conn


def imap_settings(inbox: Inbox) -> ImapSettings | None:
    return EmailAdapter().config(inbox).imap


def poll_inbox(inbox: Inbox, *, connector: Callable[[ImapSettings], imaplib.IMAP4] = connect) -> PollResult:
    """Fetch and store this inbox's unseen mail. Connection errors propagate (the task retries)."""
    cfg = imap_settings(inbox)
    if cfg is None:
        raise ValidationFailed(f"Inbox {inbox.pk} has no IMAP settings.", fields={"config.imap": "missing"})
    result = PollResult()
    conn = connector(cfg)
    try:
        typ, _ = conn.select(_quote(cfg.folder))
        if typ != "OK":
            raise imaplib.IMAP4.error(f"cannot open folder {cfg.folder!r}")
        typ, data = conn.uid("SEARCH", None, "UNSEEN")
        if typ != "OK":
            raise imaplib.IMAP4.error("SEARCH UNSEEN failed")
        uids = (data[0] or b"").split()[: cfg.batch_size]
        for uid in uids:
            _take(conn, inbox, uid.decode(), result)
    finally:
        try:
            conn.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    if result.stored or result.failed or result.rejected:
        logger.info(
            "imap inbox %s: %s stored, %s duplicates, %s rejected, %s failed",
            inbox.pk, result.stored, result.duplicates, result.rejected, len(result.failed),
        )  # fmt: skip
    return result


def _take(conn: imaplib.IMAP4, inbox: Inbox, uid: str, result: PollResult) -> None:
    try:
        raw = _fetch(conn, uid)
    except (TimeoutError, imaplib.IMAP4.abort, OSError):
        raise  # the connection is gone: stop; the task retries later
    except imaplib.IMAP4.error:
        logger.exception("imap inbox %s: cannot fetch uid %s", inbox.pk, uid)
        result.failed.append(uid)
        return
    try:
        outcome = ingest_raw_email(inbox=inbox, raw=raw)
    except (ValidationFailed, MessageTooLarge) as exc:
        # It will never become storable: flag it for a person rather than fetch it forever.
        logger.warning("imap inbox %s: uid %s rejected: %s", inbox.pk, uid, exc)
        conn.uid("STORE", uid, "+FLAGS", "(\\Seen \\Flagged)")
        result.rejected += 1
        return
    except Exception:
        logger.exception(
            "imap inbox %s: cannot store uid %s; it stays unseen for the next poll", inbox.pk, uid
        )
        result.failed.append(uid)
        return
    # stored and committed (ingest_raw_email's transaction has closed): now it may be marked seen
    conn.uid("STORE", uid, "+FLAGS", "(\\Seen)")
    if outcome.result.duplicate:
        result.duplicates += 1
    else:
        result.stored += 1


def _fetch(conn: imaplib.IMAP4, uid: str) -> bytes:
    typ, data = conn.uid("FETCH", uid, "(BODY.PEEK[])")
    if typ != "OK":
        raise imaplib.IMAP4.error(f"FETCH {uid} failed")
    for item in data or []:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    raise imaplib.IMAP4.error(f"FETCH {uid} returned no message")


def _quote(folder: str) -> str:
    if re.fullmatch(r"[\w.\-/]+", folder):
        return folder
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def due_inboxes() -> list[int]:
    """Active email inboxes with IMAP settings whose `poll_seconds` have passed since the last poll."""
    import time

    from django.core.cache import cache

    now = time.time()
    due = []
    for inbox in Inbox.objects.filter(kind="email", is_active=True, config__has_key="imap").order_by("id"):
        try:
            cfg = imap_settings(inbox)
        except ValueError:
            logger.warning("email inbox %s: IMAP settings are not valid; not polled", inbox.pk)
            continue
        if cfg is None:
            continue
        key = f"email.imap.last_poll.{inbox.pk}"
        last = cache.get(key)
        if last is not None and now - last < cfg.poll_seconds - 5:  # 5 s slack for the minute tick
            continue
        cache.set(key, now, timeout=cfg.poll_seconds * 4)
        due.append(inbox.pk)
    return due
