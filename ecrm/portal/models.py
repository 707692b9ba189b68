"""Customer portal: one-time sign-in links. Requests for unknown addresses are stored too (without a
token), so rate limits apply the same whether or not an address belongs to a customer."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from ecrm.customers.models import Customer


class LoginLink(models.Model):
    """One request for a sign-in link; holds the SHA-256 of the single-use token when one was sent."""

    email = models.CharField(max_length=254)
    ip = models.GenericIPAddressField(null=True, blank=True)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="portal_login_links"
    )
    token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["email", "created_at"], name="portal_link_email_idx"),
            models.Index(fields=["ip", "created_at"], name="portal_link_ip_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.email} {self.created_at:%Y-%m-%d %H:%M}"
