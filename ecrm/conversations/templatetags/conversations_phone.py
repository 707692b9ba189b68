"""Click-to-call: `{% load conversations_phone %}{{ phone|click_to_call }}` renders a `tel:` link.

The number is normalised to E.164 for the link (what softphones and CTI clients dial) and shown in
international format; anything that is not a phone number is shown as escaped text, never a link.
"""

from __future__ import annotations

import phonenumbers
from django import template
from django.conf import settings
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def click_to_call(value) -> SafeString | str:
    raw = str(value or "").strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, settings.ECRM_DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        return raw  # autoescaped by the template
    if not phonenumbers.is_possible_number(number):
        return raw
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return format_html('<a href="tel:{}" class="click-to-call" title="{}">{}</a>', e164, e164, shown)
