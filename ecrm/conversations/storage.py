"""Private file storage for attachments: outside MEDIA_ROOT, so no URL reaches a file directly."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import FileSystemStorage


def private_storage() -> FileSystemStorage:
    # A callable, so tests that override PRIVATE_FILES_ROOT get a fresh location.
    return FileSystemStorage(location=settings.PRIVATE_FILES_ROOT, base_url=None)
