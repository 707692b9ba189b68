"""Normalisation of identifiers: lower-cased emails, E.164 phones, folded names."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from django.conf import settings

from .models import IdentityKind

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InvalidIdentifier(ValueError):
    """The value cannot be a valid identifier of its kind."""


def normalize_email(value: str) -> str:
    email = unicodedata.normalize("NFKC", (value or "").strip()).lower()
    if not _EMAIL_RE.match(email) or len(email) > 254:
        raise InvalidIdentifier(f"{value!r} is not a valid email address")
    return email


def normalize_phone(value: str, region: str | None = None) -> str:
    raw = (value or "").strip()
    try:
        number = phonenumbers.parse(raw, region or settings.ECRM_DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier(f"{value!r} is not a valid phone number") from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentifier(f"{value!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_name(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value or "").lower().split())


def normalize_identity(kind: str, value: str) -> str:
    if kind == IdentityKind.EMAIL:
        return normalize_email(value)
    if kind == IdentityKind.PHONE:
        return normalize_phone(value)
    if kind not in IdentityKind.values:
        raise InvalidIdentifier(f"unknown identity kind {kind!r}")
    cleaned = (value or "").strip()
    if kind == IdentityKind.SOCIAL:
        cleaned = cleaned.lower()  # handles are case-insensitive: "weibo:@Alice" == "weibo:@alice"
    if not cleaned or len(cleaned) > 254:
        raise InvalidIdentifier(f"{kind} identity must be 1 to 254 characters")
    return cleaned


def display_name(first_name: str, last_name: str) -> str:
    first, last = (first_name or "").strip(), (last_name or "").strip()
    if _is_cjk(first + last):
        # Chinese names read family name first, with no space: 王 + 小明 -> 王小明.
        return f"{last}{first}"
    return " ".join(p for p in (first, last) if p)


def _is_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)
