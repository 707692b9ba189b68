"""Read one raw message from standard input and store it: the MTA pipe (Postfix `pipe`, procmail...).

Exit codes follow sysexits.h, which MTAs understand: 0 stored (or already stored), 65 EX_DATAERR the
input is not usable mail (bounced by the MTA with our reason), 67 EX_NOUSER no such email inbox,
75 EX_TEMPFAIL the database is unavailable or storing failed unexpectedly (the MTA keeps the
message and retries; an exit status of 1 would make Postfix bounce it).
"""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError

from ecrm.conversations.channels.email.inbound import MessageTooLarge, ingest_raw_email
from ecrm.conversations.models import Inbox
from ecrm.core.exceptions import ValidationFailed

logger = logging.getLogger(__name__)

EX_OK = 0
EX_DATAERR = 65
EX_NOUSER = 67
EX_TEMPFAIL = 75


class Command(BaseCommand):
    help = "Store one raw email read from standard input on an email inbox (for an MTA pipe)."

    def add_arguments(self, parser):
        parser.add_argument("--inbox", type=int, required=True, help="id of the email inbox")

    def handle(self, *args, inbox: int, **options):
        self.exit(self.ingest(inbox, self._stdin()))

    def _stdin(self):
        return getattr(self, "stdin", None) or sys.stdin.buffer

    def ingest(self, inbox_id: int, stream) -> int:
        try:
            box = Inbox.objects.filter(pk=inbox_id, kind="email", is_active=True).first()
        except DatabaseError as exc:
            self.stderr.write(f"temporary failure: database unavailable ({exc})")
            return EX_TEMPFAIL
        if box is None:
            self.stderr.write(f"no active email inbox with id {inbox_id}")
            return EX_NOUSER
        limit = settings.ECRM_MAX_RAW_EMAIL_BYTES
        raw = stream.read(limit + 1)
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            if len(raw) > limit:
                raise MessageTooLarge(f"The message is larger than the {limit} byte limit.")
            outcome = ingest_raw_email(inbox=box, raw=raw)
        except (ValidationFailed, MessageTooLarge) as exc:
            self.stderr.write(f"rejected: {exc.message}")
            return EX_DATAERR
        except DatabaseError as exc:
            self.stderr.write(f"temporary failure: {exc}")
            return EX_TEMPFAIL
        except Exception as exc:
            # A bug must not bounce the customer's mail: the MTA keeps it and retries after the fix.
            logger.exception("ingest_email: cannot store a message on inbox %s", inbox_id)
            self.stderr.write(f"temporary failure: internal error ({type(exc).__name__})")
            return EX_TEMPFAIL
        result = outcome.result
        if result.duplicate:
            self.stdout.write(f"duplicate: already stored as message {result.message.pk}")
            return EX_OK
        note = f" ({outcome.auto})" if outcome.auto else ""
        refused = outcome.refused_attachments
        if refused:
            note += f"; refused attachments: {', '.join(r['filename'] for r in refused)}"
        self.stdout.write(
            f"stored message {result.message.pk} in conversation {result.conversation.pk}{note}"
        )
        return EX_OK

    def exit(self, code: int) -> None:
        if code:
            sys.exit(code)
