"""Writes of the customer portal: sign-in by one-time email link.

A customer types an email address; when it is an email identity of a customer, a single-use link valid
for 15 minutes is mailed. The answer is the same either way (no account enumeration), and requests are
rate limited per address and per IP, counting unknown addresses too. Only the token's SHA-256 is stored.
The portal's other actions (tickets, replies, returns) call the service app's functions directly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ecrm.core.audit import record_audit
from ecrm.core.exceptions import EcrmError, ValidationFailed
from ecrm.customers.models import Customer, Identity, IdentityKind
from ecrm.customers.normalize import InvalidIdentifier, normalize_email

from .models import LoginLink

LINK_LIFETIME = dt.timedelta(minutes=15)
MAX_PER_EMAIL = 3  # per RATE_WINDOW_EMAIL
RATE_WINDOW_EMAIL = dt.timedelta(minutes=15)
MAX_PER_IP = 20  # per RATE_WINDOW_IP
RATE_WINDOW_IP = dt.timedelta(hours=1)


class RateLimited(EcrmError):
    code = "rate_limited"
    status = 429


class LinkRefused(EcrmError):
    """The sign-in link cannot be used: unknown (mistyped or tampered), expired or already used."""

    code = "link_refused"
    status = 400


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _live_customer(customer: Customer) -> Customer:
    """After a merge the surviving profile holds the orders and tickets."""
    seen = 0
    while customer.merged_into_id and seen < 10:
        customer = Customer.objects.get(pk=customer.merged_into_id)
        seen += 1
    return customer


def do_request_login_link(*, email: str, ip: str | None, link_base: str) -> None:
    """Mail a sign-in link to `email` when it belongs to a customer. Returns nothing on purpose:
    the caller must answer the same way for known and unknown addresses.

    `link_base` is the absolute URL the token is appended to (e.g. https://crm.example/portal/login/)."""
    try:
        address = normalize_email(email)
    except InvalidIdentifier:
        raise ValidationFailed(
            _("Please enter a valid email address."), fields={"email": _("Enter a valid email address.")}
        ) from None
    now = timezone.now()
    with transaction.atomic():
        recent_email = LoginLink.objects.filter(
            email=address, created_at__gte=now - RATE_WINDOW_EMAIL
        ).count()
        recent_ip = LoginLink.objects.filter(ip=ip, created_at__gte=now - RATE_WINDOW_IP).count() if ip else 0
        if recent_email >= MAX_PER_EMAIL or recent_ip >= MAX_PER_IP:
            raise RateLimited(_("Too many sign-in requests. Please wait a few minutes and try again."))
        identity = (
            Identity.objects.select_related("customer").filter(kind=IdentityKind.EMAIL, value=address).first()
        )
        link = LoginLink(email=address, ip=ip or None, created_at=now)
        token = None
        if identity is not None:
            customer = _live_customer(identity.customer)
            token = secrets.token_urlsafe(32)
            link.customer, link.token_hash, link.expires_at = customer, token_hash(token), now + LINK_LIFETIME
        link.save()
        if token is None:
            return
        record_audit(actor=None, action="portal.login_link.send", obj=link, after={"customer": customer.pk})
        url = link_base.rstrip("/") + "/" + token + "/"
        transaction.on_commit(lambda: _send_link(address, url))


def _send_link(address: str, url: str) -> None:
    minutes = int(LINK_LIFETIME.total_seconds() // 60)
    body = _(
        "Hello,\n\nUse this link to sign in to your customer portal. It works once and expires in "
        "%(minutes)d minutes:\n\n%(url)s\n\nIf you did not ask for it, you can ignore this email."
    ) % {"minutes": minutes, "url": url}
    send_mail(_("Your sign-in link"), body, settings.DEFAULT_FROM_EMAIL, [address])


def check_login_link(token: str) -> LoginLink:
    """The link for `token` if it can still be used; LinkRefused (with the reason) otherwise."""
    link = LoginLink.objects.select_related("customer").filter(token_hash=token_hash(token or "")).first()
    if link is None or link.customer_id is None:
        raise LinkRefused(
            _("This sign-in link is not valid. Check that you copied all of it, or ask for a new one.")
        )
    if link.used_at is not None:
        raise LinkRefused(_("This sign-in link has already been used. Ask for a new one."), code="link_used")
    if link.expires_at is None or link.expires_at <= timezone.now():
        raise LinkRefused(_("This sign-in link has expired. Ask for a new one."), code="link_expired")
    return link


@transaction.atomic
def do_redeem_login_link(*, token: str) -> Customer:
    """Use up the link (once) and return the customer to sign in."""
    link = check_login_link(token)
    # lock and re-check: two clicks at once must not both sign in
    link = LoginLink.objects.select_for_update().get(pk=link.pk)
    if link.used_at is not None:
        raise LinkRefused(_("This sign-in link has already been used. Ask for a new one."), code="link_used")
    link.used_at = timezone.now()
    link.save(update_fields=["used_at"])
    customer = _live_customer(Customer.objects.get(pk=link.customer_id))
    record_audit(actor=None, action="portal.sign_in", obj=link, after={"customer": customer.pk})
    return customer
