"""Settings for real worker processes in the recovery tests: the production settings plus the test jobs."""

from config.settings.base import *  # noqa: F403
from config.settings.base import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "ecrm.core.tests.jobapp"]
ECRM_WORKER_BEAT_SECONDS = 1
ECRM_JOB_RECOVERY_SECONDS = 2
ECRM_JOB_ORPHAN_AFTER = 3  # a message taken off the queue by a killed worker is re-sent after 3 s
