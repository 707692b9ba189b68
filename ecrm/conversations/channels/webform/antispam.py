"""Spam protection for the public forms (web forms and callback requests).

Public forms are posted from the shop (inside an iframe, where the CRM's session and CSRF cookies are
third-party and often blocked), so they are CSRF-exempt. Instead each rendered form carries a signed
token naming the form and the time it was shown: a post without a valid token is refused, and a post
sooner than the form's minimum fill time after it was shown is a bot. A hidden honeypot input that a
person never sees is the second trap: a filled one is answered "thank you" and dropped. Posts are
counted per client IP in the cache (fixed one-hour windows) and refused with a 429 past the limit.
"""

from __future__ import annotations

import time

from django.core import signing
from django.core.cache import cache
from django.utils.translation import gettext as _

HONEYPOT_FIELD = "ecrm_website"  # bots fill anything that looks like a URL field
TOKEN_FIELD = "ecrm_token"  # noqa: S105 (a form field name, not a secret)
TOKEN_MAX_AGE = 24 * 3600  # a form left open longer than a day is shown again with a fresh token
_SALT = "ecrm.conversations.public-form"


class TokenProblem(Exception):
    """The token is missing, forged, for another form, expired, or the form was sent too fast."""

    def __init__(self, message: str, *, too_fast: bool = False):
        super().__init__(message)
        self.too_fast = too_fast


def issue_token(scope: str, object_id: int, *, issued_at: float | None = None) -> str:
    """A signed token for one rendering of a public form (`scope` is "webform" or "callback")."""
    return signing.dumps({"s": scope, "i": object_id, "t": int(issued_at or time.time())}, salt=_SALT)


def check_token(token: str, scope: str, object_id: int, *, min_fill_seconds: int) -> None:
    """Raise TokenProblem unless the token was issued for this form at least `min_fill_seconds` ago."""
    try:
        data = signing.loads(token or "", salt=_SALT, max_age=TOKEN_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise TokenProblem(_("This form was open too long. Please check it and send it again.")) from exc
    except signing.BadSignature as exc:
        raise TokenProblem(_("This form could not be verified. Please send it again.")) from exc
    if not isinstance(data, dict) or data.get("s") != scope or data.get("i") != object_id:
        raise TokenProblem(_("This form could not be verified. Please send it again."))
    age = time.time() - int(data.get("t", 0))
    if age > TOKEN_MAX_AGE:
        raise TokenProblem(_("This form was open too long. Please check it and send it again."))
    if age < min_fill_seconds:
        raise TokenProblem(_("That was very fast. Please check the form and send it again."), too_fast=True)


def client_ip(request) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says unless a proxy we run rewrites it,
    # and uvicorn's --proxy-headers already puts the real address here when one does.
    return request.META.get("REMOTE_ADDR") or "unknown"


def over_rate_limit(scope: str, object_id: int, ip: str, *, per_hour: int) -> bool:
    """Count this post; True once `ip` has posted more than `per_hour` times to the form this hour."""
    window = int(time.time() // 3600)
    key = f"ecrm:rl:{scope}:{object_id}:{ip}:{window}"
    cache.add(key, 0, timeout=3600 + 60)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=3600 + 60)
        count = 1
    return count > per_hour


def _spam_key(scope: str, object_id: int) -> str:
    return f"ecrm:spam:{scope}:{object_id}"


def count_spam(scope: str, object_id: int) -> int:
    """Count one blocked post (honeypot or too fast); the console shows the total."""
    key = _spam_key(scope, object_id)
    cache.add(key, 0, timeout=None)
    try:
        return cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=None)
        return 1


def spam_count(scope: str, object_id: int) -> int:
    return int(cache.get(_spam_key(scope, object_id)) or 0)
