from django.apps import AppConfig


class JobAppConfig(AppConfig):
    """A test-only app installed by worker_settings: jobs that the recovery tests run in real workers."""

    name = "ecrm.core.tests.jobapp"
    label = "jobapp"
