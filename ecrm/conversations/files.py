"""What files customers may send: a type allow-list checked against the bytes, not only the name."""

from __future__ import annotations

import mimetypes

ALLOWED_TYPES = {
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain", "text/csv",
    "application/zip", "application/msword", "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "message/rfc822", "audio/mpeg", "audio/wav", "video/mp4",
}  # fmt: skip

# magic numbers of the types whose content we can check cheaply
_MAGIC = {
    "image/png": [b"\x89PNG\r\n\x1a\n"],
    "image/jpeg": [b"\xff\xd8\xff"],
    "image/gif": [b"GIF87a", b"GIF89a"],
    "application/pdf": [b"%PDF-"],
    "application/zip": [b"PK\x03\x04", b"PK\x05\x06"],
}
_EXECUTABLE = [b"MZ", b"\x7fELF", b"#!", b"<script", b"<html", b"<!doctype html"]


def check_content_type(filename: str, declared: str, content: bytes) -> str | None:
    """Why this file is refused, or None. The declared type must be allowed, agree with the name's
    extension where there is one, and the bytes must look like the type (no HTML or programs)."""
    declared = (declared or "").split(";")[0].strip().lower()
    guessed = mimetypes.guess_type(filename or "")[0]
    ctype = declared if declared and declared != "application/octet-stream" else (guessed or "")
    if ctype not in ALLOWED_TYPES:
        return f"file type {ctype or 'unknown'} is not accepted"
    head = content[:16].lower()
    if any(head.startswith(sig.lower()) for sig in _EXECUTABLE) and ctype != "text/plain":
        return "the content is a program or web page, not the declared type"
    signatures = _MAGIC.get(ctype)
    if signatures and content and not any(content.startswith(sig) for sig in signatures):
        return f"the content is not {ctype}"
    return None
