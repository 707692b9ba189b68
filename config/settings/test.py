"""Test settings: fast hashing, tasks run eagerly, isolated files."""

import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import HUEY

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
HUEY = {**HUEY, "immediate": True}
MEDIA_ROOT = tempfile.mkdtemp(prefix="ecrm-media-")
PRIVATE_FILES_ROOT = Path(tempfile.mkdtemp(prefix="ecrm-private-"))
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
AXES_ENABLED = True
if CHANNEL_LAYERS["default"]["BACKEND"].endswith("RelayChannelLayer"):  # noqa: F405
    # the same layer as `make run`, in a folder of its own: a test never reaches a running dev server
    CHANNEL_LAYERS = {"default": {**CHANNEL_LAYERS["default"], "CONFIG": {  # noqa: F405
        **CHANNEL_LAYERS["default"]["CONFIG"], "folder": tempfile.mkdtemp(prefix="ecrm-live-")}}}  # noqa: F405 # fmt: skip
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
