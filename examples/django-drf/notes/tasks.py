"""Scheduled jobs (Zappa `events` in zappa_settings.json's prod stage)."""
from datetime import timedelta

from django.utils import timezone

from .models import Note

RETENTION_DAYS = 90


def purge_old_notes(event=None, context=None):
    """Delete notes older than RETENTION_DAYS; called as handler(event, context)."""
    cutoff = timezone.now() - timedelta(days=RETENTION_DAYS)
    deleted, _ = Note.objects.filter(created__lt=cutoff).delete()
    return {"deleted": deleted}
