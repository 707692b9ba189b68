"""What the recovery tests' jobs write: one row per job number, unique, so a second commit would fail."""

from django.db import models


class JobMark(models.Model):
    """A job's committed effect."""

    number = models.IntegerField(unique=True)
    pid = models.IntegerField()

    def __str__(self) -> str:
        return f"job {self.number}"
